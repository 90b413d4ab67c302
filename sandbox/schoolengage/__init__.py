"""SchoolEngage sandbox: the form-submissions API the writeback extracts from."""

from .app import DEFAULT_API_KEY, SubmissionStore, create_app

__all__ = ["DEFAULT_API_KEY", "SubmissionStore", "create_app"]
