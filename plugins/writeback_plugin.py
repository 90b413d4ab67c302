"""Airflow plugin: mounts the writeback review app into the API server at /writeback, adds a
"Writeback review" navigation entry and a DAG-run tab, and the "Review" link on the approval task.

`plugins/.airflowignore` hides the `writeback/` package folder from the plugin loader, so this module is
the only thing Airflow imports from the plugins folder; the package itself is installed (or on the path).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from writeback.review.app import create_app
from writeback.review.links import ReviewLink

# The store is opened on the first request (WRITEBACK_STORE_URL, else the default SQLite file), not at import:
# the scheduler and workers import plugins too and must not touch the store for it.
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
