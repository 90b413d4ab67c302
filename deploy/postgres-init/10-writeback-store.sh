#!/usr/bin/env bash
# Creates the writeback store's database and role next to Airflow's metadata database.
# The postgres image runs the scripts in /docker-entrypoint-initdb.d once, when the data volume is empty
# (to re-run it: `docker compose down -v`, which also deletes all Airflow and store data).
# WRITEBACK_DB_NAME, WRITEBACK_DB_USER and WRITEBACK_DB_PASSWORD come from docker-compose.yaml.
set -euo pipefail

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v store_db="$WRITEBACK_DB_NAME" -v store_user="$WRITEBACK_DB_USER" -v store_password="$WRITEBACK_DB_PASSWORD" <<'SQL'
CREATE ROLE :"store_user" LOGIN PASSWORD :'store_password';
CREATE DATABASE :"store_db" OWNER :"store_user";
REVOKE ALL ON DATABASE :"store_db" FROM PUBLIC;
SQL
