"""Provider metadata (the `apache_airflow_provider` entry point): what `airflow providers get writeback`
lists and what Airflow's connection form and configuration know about this package.

The connection forms are declared here (`ui-field-behaviour` and typed `conn-fields`, the Airflow 3.2+
provider.yaml way), not by hook methods, so the API server builds them without importing the hooks.
A `conn-fields` value is kept in the connection's extra JSON under its own name (`timeout`, ...), which
is where the hooks read it.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

PACKAGE = "writeback"
INTEGRATIONS = ("PowerSchool", "SchoolEngage", "Writeback")


def _version() -> str:
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:  # a source checkout on the path, not installed
        return "0.0.0"


def _number(label: str, description: str, kind: str = "number", *, minimum: float | None = None,
            default: float | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": [kind, "null"]}
    if minimum is not None:
        schema["minimum"] = minimum
    if default is not None:
        schema["default"] = default
    return {"label": label, "description": description, "schema": schema}


HTTP_FIELDS = {
    "timeout": _number("Timeout (seconds)", "Per request; default 30.", minimum=1, default=30),
    "max_retries": _number("Max retries", "Retries of a failed call (5xx, 429, connection errors); default 5.",
                           "integer", minimum=0, default=5),
    "backoff": _number("Backoff (seconds)", "First retry delay, doubled each retry; default 1.", minimum=0),
}

CONNECTION_TYPES = [
    {
        "connection-type": "powerschool",
        "hook-class-name": "writeback.hooks.powerschool.PowerSchoolHook",
        "hook-name": "PowerSchool",
        "ui-field-behaviour": {
            "hidden-fields": [],
            "relabeling": {"host": "PowerSchool host", "schema": "Scheme (http or https)",
                           "login": "OAuth client ID", "password": "OAuth client secret"},
            "placeholders": {"host": "district.powerschool.com", "schema": "https", "login": "plugin client ID",
                             "password": "plugin client secret"},
        },
        "conn-fields": {
            **HTTP_FIELDS,
            "requests_per_second": _number(
                "Requests per second", "Client-side pace. Leave empty: the client learns the server's minimum "
                "interval between requests from its first refusal.", minimum=0),
        },
    },
    {
        "connection-type": "schoolengage",
        "hook-class-name": "writeback.hooks.schoolengage.SchoolEngageHook",
        "hook-name": "SchoolEngage",
        "ui-field-behaviour": {
            "hidden-fields": ["login"],
            "relabeling": {"host": "SchoolEngage host", "schema": "Scheme (http or https)", "password": "API key"},
            "placeholders": {"host": "api.schoolengage.example", "schema": "https"},
        },
        "conn-fields": {
            **HTTP_FIELDS,
            "per_page": _number("Page size", "Submissions per listing page.", "integer", minimum=1),
        },
    },
    {
        "connection-type": "writeback_store",
        "hook-class-name": "writeback.hooks.store.StoreHook",
        "hook-name": "Writeback store",
        "ui-field-behaviour": {
            "hidden-fields": [],
            "relabeling": {"schema": "Database", "login": "User"},
            "placeholders": {"host": "postgres.internal", "port": "5432", "schema": "writeback", "login": "writeback"},
        },
        "conn-fields": {
            "driver": {"label": "SQLAlchemy driver",
                       "description": "postgresql+psycopg2 (default), or sqlite with the file path as host (demo).",
                       "schema": {"type": ["string", "null"], "enum": ["postgresql+psycopg2", "sqlite", None]}},
            "sslmode": {"label": "SSL mode", "description": "PostgreSQL sslmode, e.g. require or verify-full.",
                        "schema": {"type": ["string", "null"],
                                   "enum": ["disable", "allow", "prefer", "require", "verify-ca", "verify-full",
                                            None]}},
        },
    },
]

CONFIG = {
    "writeback": {
        "description": "The writeback provider (SchoolEngage to PowerSchool).",
        "options": {
            "store_conn_id": {
                "description": "Airflow connection of the writeback store (conn type writeback_store or "
                               "postgres), for every district whose file names no store_conn_id of its own. "
                               "Empty: the WRITEBACK_STORE_URL environment variable (development); with neither, "
                               "tasks fail saying so.",
                "version_added": "0.1.0",
                "type": "string",
                "example": "writeback_store",
                "default": "",
            },
            "include_dir": {
                "description": "Folder with districts/ and mappings/ (the district files and their field "
                               "mappings). Empty: the WRITEBACK_INCLUDE environment variable, else the include/ "
                               "folder next to the DAGs folder.",
                "version_added": "0.1.0",
                "type": "string",
                "example": "/opt/airflow/include",
                "default": "",
            },
        },
    },
}


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": PACKAGE,
        "name": "Writeback",
        "description": "SchoolEngage -> PowerSchool writeback: contact matching, a review step and audited, "
                       "idempotent writes.",
        "versions": [_version()],
        "integrations": [{"integration-name": name, "tags": ["service"]} for name in INTEGRATIONS],
        "hooks": [
            {"integration-name": "PowerSchool", "python-modules": ["writeback.hooks.powerschool"]},
            {"integration-name": "SchoolEngage", "python-modules": ["writeback.hooks.schoolengage"]},
            {"integration-name": "Writeback", "python-modules": ["writeback.hooks.store"]},
        ],
        "operators": [{"integration-name": "Writeback",
                       "python-modules": ["writeback.operators.stages", "writeback.operators.store",
                                          "writeback.operators.maintenance"]}],
        "sensors": [{"integration-name": "Writeback", "python-modules": ["writeback.sensors.approval"]}],
        "triggers": [{"integration-name": "Writeback", "python-modules": ["writeback.triggers.approval"]}],
        "connection-types": CONNECTION_TYPES,
        "extra-links": ["writeback.review.links.ReviewLink"],
        "plugins": [{"name": "writeback", "plugin-class": "writeback.plugin.WritebackPlugin"}],
        "config": CONFIG,
    }
