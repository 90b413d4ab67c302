"""Airflow plugin: mounts the writeback review app into the API server at /writeback, adds a
"Writeback review" navigation entry and a DAG-run tab, and the "Review" link on the approval task.

Registered by the installed package (the `airflow.plugins` entry point in pyproject.toml, and listed in
`writeback.provider.get_provider_info`), so an empty plugins folder is enough. `plugins/.airflowignore`
keeps Airflow's plugin loader out of the package's source folder, which a deployment may mount there.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from .review.app import create_app
from .review.links import ReviewLink

# Each district's store is opened on the first request that needs it (store/locate.py), not at import: the
# scheduler and workers import plugins too and must not touch a store for it.
review_app = create_app()


class WritebackPlugin(AirflowPlugin):
    name = "writeback"
    fastapi_apps = [{"app": review_app, "url_prefix": "/writeback", "name": "Writeback review"}]
    external_views = [
        {"name": "Writeback review", "href": "/writeback/", "destination": "nav", "url_route": "writeback-review",
         "category": "browse"},
        {"name": "Writeback review", "href": "/writeback/dag-runs/{DAG_ID}/{RUN_ID}", "destination": "dag_run",
         "url_route": "writeback-review-run"},
    ]
    # ApprovalSensor declares the link itself (`operator_extra_links = (ReviewLink(),)`); Airflow 3 stores the
    # computed URL as an XCom when the task finishes a try. Registering it here lists it with the plugin.
    operator_extra_links = [ReviewLink()]
