"""District configuration (`include/districts/*.yaml`): which connections, mapping, schedule and limits."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .domain.mapping import Mapping, MappingError, load_mapping
from .domain.matching import MatchThresholds
from .domain.routing import FormRoutes
from .yamlfile import YamlFileError, read_yaml


def project_root() -> Path:
    """The folder that holds `include/` (set WRITEBACK_INCLUDE to use another one)."""
    return Path(__file__).resolve().parents[2]


def include_dir() -> Path:
    """`WRITEBACK_INCLUDE`, else the Airflow option `[writeback] include_dir`, else the `include/` of this
    source checkout, else an `include/` beside or inside Airflow's DAGs folder (an installed package)."""
    configured = os.environ.get("WRITEBACK_INCLUDE") or _airflow_option("include_dir")
    if configured:
        return Path(configured)
    candidates = [project_root() / "include"]
    dags = _airflow_option("dags_folder", section="core")
    if dags:
        candidates += [Path(dags).parent / "include", Path(dags) / "include"]
    return next((c for c in candidates if (c / "districts").is_dir()), candidates[0])


def _airflow_option(key: str, section: str = "writeback") -> str:
    try:
        from airflow.configuration import conf
    except ImportError:  # pragma: no cover - the CLI without Airflow
        return ""
    return (conf.get(section, key, fallback="") or "").strip()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QualityConfig(_Strict):
    max_bad_share: float = Field(0.25, ge=0, le=1)  # above it the run fails before matching (drift)
    # An unusually large change holds the run for an explicit approval of the whole batch.
    hold_min_students: int = 20  # below this many planned students no share-based hold applies
    hold_expire_share: float = Field(0.2, ge=0, le=1)  # students losing a contact
    hold_data_access_changes: int = 50  # Data Access grants in one run
    hold_replace_share: float = Field(0.5, ge=0, le=1)  # students with a replaced (red) field


class NotificationsConfig(_Strict):
    """Failure notifications through Airflow's notifiers; off unless configured."""

    email_on_failure: list[str] = Field(default_factory=list)  # SmtpNotifier recipients
    smtp_conn_id: str = "smtp_default"


class ApprovalConfig(_Strict):
    timeout_hours: float = 72
    poke_interval_seconds: float = 30
    deferrable: bool = True  # wait in the triggerer; false: reschedule-mode pokes (no triggerer needed)


class ApplyConfig(_Strict):
    pool: str | None = None  # the Airflow pool shared by every task that calls this PowerSchool
    pool_slots: int = 4
    student_batch_size: int = 50  # students per POST /ws/v1/student
    batch_students: int = 500  # students per parallel apply task (dynamic task mapping)
    concurrency: int = Field(4, ge=1, le=32)  # independent contact groups applied at once within a task


class DistrictConfig(_Strict):
    name: str = Field(pattern=r"^[a-z0-9_]+$")
    title: str = ""
    # the district's forms: form id (or a pattern such as "kindergarten-*") -> mapping file; or `mapping`
    # alone, for a district with one form (the mapping's form_id names it; "*" when it has none)
    forms: dict[str, str] = Field(default_factory=dict)
    mapping: str | None = None
    powerschool_conn_id: str
    submissions_conn_id: str
    schedule: str | None = None
    timezone: str = "UTC"
    phone_region: str = "US"
    # the district's own store: an Airflow connection (store/locate.py); store_url is for development only.
    # Neither: the deployment's store ([writeback] store_conn_id, else WRITEBACK_STORE_URL), else an error.
    store_conn_id: str | None = None
    store_url: str | None = None
    tags: list[str] = Field(default_factory=list)
    quality: QualityConfig = QualityConfig()
    approval: ApprovalConfig = ApprovalConfig()
    apply: ApplyConfig = ApplyConfig()
    notifications: NotificationsConfig = NotificationsConfig()
    matching: MatchThresholds = MatchThresholds()  # certain_name, similar_name, possible, margin, max_candidates

    @model_validator(mode="after")
    def _one_way_to_name_mappings(self) -> DistrictConfig:
        if bool(self.forms) == bool(self.mapping):
            raise ValueError("give either `forms` (form id or pattern -> mapping file) or `mapping`, not "
                             + ("both" if self.forms else "neither"))
        return self

    @property
    def pool_name(self) -> str:
        return self.apply.pool or f"powerschool_{self.powerschool_conn_id}"

    @property
    def mapping_files(self) -> list[str]:
        return list(dict.fromkeys(self.forms.values())) if self.forms else [self.mapping or ""]

    def load_forms(self) -> FormRoutes:
        """Every mapping of the district, checked, with the form each reads. All problems of all its
        mapping files are reported together (one MappingError naming each file)."""
        loaded: dict[str, Mapping] = {}
        problems: list[str] = []
        for file in self.mapping_files:
            try:
                loaded[file] = load_mapping(include_dir() / "mappings" / file)
            except MappingError as exc:
                problems += [f"{exc.source}: {p}" if not p.startswith(exc.source) else p for p in exc.problems]
        if problems:
            raise MappingError(f"district {self.name}", problems)
        if self.forms:
            routes = tuple((form, loaded[file]) for form, file in self.forms.items())
        else:
            mapping = loaded[self.mapping or ""]
            routes = ((mapping.form_id or "*", mapping),)
        return FormRoutes(self.name, routes)

    def load_mapping(self) -> Mapping:
        """The district's first mapping (for a district with one form; see `load_forms`)."""
        return self.load_forms().mappings[0]


def load_district(path: str | Path) -> DistrictConfig:
    """Read a district file (through the one YAML reader: a key given twice is an error naming both lines)."""
    path = Path(path)
    try:
        return DistrictConfig.model_validate(read_yaml(path))
    except YamlFileError as exc:
        raise MappingError(exc.source, exc.problems) from exc
    except ValidationError as exc:
        raise MappingError(str(path), [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]) from None


def district_files() -> list[Path]:
    return sorted((include_dir() / "districts").glob("*.yaml"))


def district(name: str) -> DistrictConfig:
    for path in district_files():
        config = load_district(path)
        if config.name == name:
            return config
    raise KeyError(f"no district named {name!r} in {include_dir() / 'districts'}")
