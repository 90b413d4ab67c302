"""The review tests' real Airflow API server (SimpleAuthManager users admin/viewer, real tokens) and their
seeded run, reused as they are."""

from tests.review.conftest import airflow_server, preview_sandboxes, run_id, store  # noqa: F401 - pytest fixtures
