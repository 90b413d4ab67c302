"""The "Review" button on the approval task in Airflow's UI: a link to the run's review page."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlparse

from airflow.sdk import BaseOperatorLink

MOUNT_PREFIX = "/writeback"


def review_path(store_run_id: str) -> str:
    """The review page of a store run, under the Airflow API server's base path (if any)."""
    try:
        from airflow.configuration import conf

        root = urlparse(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")
    except Exception:  # noqa: BLE001 - no Airflow config: serve from the root
        root = ""
    return f"{root}{MOUNT_PREFIX}/runs/{quote(store_run_id, safe='')}"


class ReviewLink(BaseOperatorLink):
    """Computed when the task finishes a try (Airflow 3 stores the link as an XCom) from the task's district
    and the DAG run id, the same way `operators.context.run_id_for` names the store's run."""

    name = "Review"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        from ..operators.context import run_id_for

        district = getattr(operator, "district", None) or str(ti_key.dag_id).removeprefix("writeback_")
        return review_path(run_id_for(district, ti_key.run_id))
