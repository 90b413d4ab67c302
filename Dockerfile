# syntax=docker/dockerfile:1
#
# The writeback Airflow image: the official Airflow image (the version and Python pinned in
# requirements.txt and pyproject.toml; tests/deploy checks they agree), this project's pinned
# dependencies, the `writeback` package (provider, hooks, `writeback` command), the DAG file, the
# district and mapping files, and the sandboxes used by the `demo` compose profile.
#
#   docker compose build            (see docs/deployment.md)
#
# No secret is baked in: connections come from a secrets backend (or, for the demo, from
# docker-compose.yaml's sandbox defaults).
FROM apache/airflow:3.3.2-python3.11

# Directories that named volumes are mounted on: a new volume copies their owner (airflow, group 0,
# group-writable so that any AIRFLOW_UID with group 0 can write, as in the official image).
USER root
RUN mkdir -p /opt/airflow/auth /opt/sandbox-data \
    && chown airflow:0 /opt/airflow/auth /opt/sandbox-data \
    && chmod 2775 /opt/airflow/auth /opt/sandbox-data
USER airflow
WORKDIR /opt/airflow

# Dependencies first (their layer is reused while only the project's code changes). requirements.txt
# pins apache-airflow itself, so pip cannot replace the image's Airflow; constraints.txt pins every
# transitive dependency.
COPY --chown=airflow:0 requirements.txt constraints.txt /opt/airflow/deps/
RUN pip install --no-cache-dir -r /opt/airflow/deps/requirements.txt -c /opt/airflow/deps/constraints.txt

# The project. `pip install --no-deps .` installs the `writeback` package from plugins/ with its
# entry points (the Airflow provider and the `writeback` command); the DAG file and the plugins
# folder are also where Airflow looks for them (AIRFLOW_HOME is /opt/airflow).
COPY --chown=airflow:0 pyproject.toml /opt/airflow/pyproject.toml
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 include/ /opt/airflow/include/
COPY --chown=airflow:0 sandbox/ /opt/airflow/sandbox/
RUN pip install --no-cache-dir --no-deps /opt/airflow \
    && rm -rf /opt/airflow/build /opt/airflow/plugins/writeback.egg-info

# The installed package lives in site-packages, so it cannot find include/ next to itself.
ENV WRITEBACK_INCLUDE=/opt/airflow/include \
    GX_ANALYTICS_ENABLED=False
