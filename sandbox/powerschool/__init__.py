"""PowerSchool sandbox: a stateful HTTP stand-in for a district's PowerSchool server.

Modules: ``db`` (SQLite state), ``auth`` (OAuth tokens), ``v1`` (metadata, students),
``contacts`` + ``contact_model`` (/ws/contacts), ``tables`` (table API), ``powerquery`` (named
snapshot queries), ``admin`` (/_sandbox endpoints and the counting middleware), ``fidelity``
(the policy seam for grants, throttling and faults), ``app`` (``create_app``), ``server``
(``start_in_thread``, the foreground server), ``__main__`` (the CLI).
"""
