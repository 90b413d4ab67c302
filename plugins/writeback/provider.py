"""Provider metadata, so Airflow lists the PowerSchool and SchoolEngage connection types."""


def get_provider_info() -> dict:
    return {
        "package-name": "writeback",
        "name": "Writeback",
        "description": "SchoolEngage -> PowerSchool writeback: hooks, operators, sensors and the review app.",
        "versions": ["0.1.0"],
        "connection-types": [
            {"hook-class-name": "writeback.hooks.powerschool.PowerSchoolHook", "connection-type": "powerschool"},
            {"hook-class-name": "writeback.hooks.schoolengage.SchoolEngageHook", "connection-type": "schoolengage"},
        ],
    }
