"""One writeback DAG per district file in include/districts/ (Airflow parses this file)."""

from writeback.config import district_files, load_district
from writeback.dag_factory import build_dag

for _path in district_files():
    _config = load_district(_path)
    globals()[f"writeback_{_config.name}"] = build_dag(_config)
