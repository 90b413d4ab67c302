"""One writeback DAG per district file in include/districts/ (Airflow parses this file), and for each
district two manually triggered maintenance DAGs: rollback and doctor (no shell needed)."""

from writeback.config import district_files, load_district
from writeback.dag_factory import build_dag, build_doctor_dag, build_rollback_dag

for _path in district_files():
    _config = load_district(_path)
    globals()[f"writeback_{_config.name}"] = build_dag(_config)
    globals()[f"writeback_{_config.name}_rollback"] = build_rollback_dag(_config)
    globals()[f"writeback_{_config.name}_doctor"] = build_doctor_dag(_config)
