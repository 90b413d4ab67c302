"""writeback: SchoolEngage -> PowerSchool writeback, orchestrated by Airflow."""
