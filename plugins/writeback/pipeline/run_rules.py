"""Which runs may be written: one definition for every path that writes to PowerSchool for a run (the
apply and cleanup tasks, a rerun of them, a `retry_run_id` run, the Applier itself, a rollback).

- A **dry run**'s plan was made for review only: no path writes it, and there is nothing to roll back.
- A run is **superseded** when a newer run of the same district — one that extracted after it (a higher
  extraction ticket, `Store.begin_extraction`) and is not a dry run — has begun writing (it has ledger
  rows). The older plan was made against a PowerSchool the newer run has changed since (its creates may
  already exist, its values may be older than the newer forms'), so it is not applied again: start a new
  run, which extracts from the cursor and plans on a fresh snapshot.
"""

from __future__ import annotations

from ..store import Store
from ..store.schema import Run


class RunRefused(RuntimeError):
    """The run may not be written as asked; a person starts a new run instead. Retrying cannot help."""


def refuse_dry_run(run: Run, action: str) -> None:
    if run.dry_run:
        raise RunRefused(f"run {run.id} was a dry run: its plan was made for review only and is never {action} "
                         "by any path (a retry, a rerun of a task, the command line). Trigger a new run without "
                         "dry_run to write the district's forms.")


def refuse_superseded(store: Store, run: Run) -> None:
    newer = store.superseding_run(run.id)
    if newer is not None:
        raise RunRefused(f"run {run.id} is superseded by run {newer.id}, which extracted after it and has written "
                         f"to PowerSchool: {run.id}'s plan was made against a PowerSchool that {newer.id} has changed "
                         "since, so it is not applied again. Trigger a new run instead: it extracts from the "
                         "district's cursor and plans on a fresh snapshot.")


def writable_run(store: Store, run_id: str, action: str = "applied") -> Run:
    """The run, when its plan may be written now; else RunRefused saying why and what to do."""
    run = store.get_run(run_id)
    refuse_dry_run(run, action)
    refuse_superseded(store, run)
    return run


def retry_target(store: Store, run_id: str, district: str) -> Run:
    """The earlier run a `retry_run_id` run acts on, when it may be retried."""
    run = store.get_run(run_id)
    if run.district != district:
        raise RunRefused(f"run {run_id!r} belongs to district {run.district!r}, not {district!r}")
    return writable_run(store, run_id, "applied")


def rollback_target(store: Store, run_id: str) -> Run:
    run = store.get_run(run_id)
    if run.dry_run:
        raise RunRefused(f"run {run_id} was a dry run: it writes nothing, so there is nothing of it to roll back "
                         "(a rollback of a dry run is refused so that no path acts on a dry run's plan)")
    return run
