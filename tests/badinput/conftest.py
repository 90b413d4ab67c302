"""One generated district served by the PowerSchool sandbox (HTTP over loopback), its snapshot read once by
our client, and a real store; each example of a property gets its own run in that store."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sandbox.generate import build_all
from sandbox.powerschool.server import start_in_thread
from writeback.config import district as district_config
from writeback.domain.mapping import Mapping, load_mapping
from writeback.domain.models import Submission
from writeback.pipeline import stages
from writeback.powerschool import PowerSchoolClient
from writeback.store import Store

ROOT = Path(__file__).resolve().parents[2]
MAPPING = ROOT / "include" / "mappings" / "registration-2026.yaml"


@dataclass(repr=False)
class World:
    store: Store
    mapping: Mapping
    snapshot_run: str  # the run whose snapshot every other run copies
    bases: list[dict[str, Any]]  # well-formed submissions that pass every check unchanged
    runs: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def __repr__(self) -> str:  # hypothesis prints fixtures in failing examples: keep it short
        return f"World({len(self.bases)} base submissions)"

    def context(self, submissions: list[dict[str, Any]], config=None, prefix: str = "bad") -> stages.RunContext:
        run_id = f"demo:{prefix}-{next(self.runs)}"
        self.store.ensure_run(run_id, "demo")
        if self.snapshot_run:  # every run compares against the one snapshot extracted for the session
            self.store.copy_snapshot(self.snapshot_run, run_id)
        self.store.save_submissions(run_id, [Submission.model_validate(s) for s in submissions])
        return stages.RunContext(district=config or district_config("demo"), store=self.store, run_id=run_id,
                                 _mapping=self.mapping)


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    district, submissions, _truth = build_all(40, 11)
    server = start_in_thread(district, port=0, client_id="c", client_secret="s")
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('badinput') / 'store.db'}", migrate=True)
    try:
        mapping = load_mapping(MAPPING)
        w = World(store=store, mapping=mapping, snapshot_run="", bases=[])
        ctx = w.context(submissions, prefix="baseline")
        stages.extract_snapshot(ctx, PowerSchoolClient(server.url, "c", "s"))
        w.snapshot_run = ctx.run_id
        stages.check_quality(ctx)  # also warms Great Expectations up once
        valid = {r.submission_id for r in store.submissions(ctx.run_id, status="valid")}
        w.bases = [s for s in submissions if s["id"] in valid]
        assert len(w.bases) >= 10, "the generator's well-formed submissions should pass the checks"
        yield w
    finally:
        store.dispose()
        server.stop()
