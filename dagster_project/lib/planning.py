"""What has to run: which landing files are new, changed or gone, and the one run that loads them.

Every way work starts — ``cs-warehouse run``, the daily schedule, the landing sensor — asks
``plan_run`` (pure) the same question with the same inputs:

- ``current_files``: every accepted landing file with its sha256, from the landing listing and the
  one change cache, ``lib.ingest.landing.Fingerprints`` (``Settings.fingerprints_file``). A file is
  re-hashed only when its size, mtime or ctime moved: an edit in place that restores the mtime
  still moves the ctime, so it is seen.
- ``loaded_files``: what the ingest ledger (``raw._ingest_ledger``) says each file was, at its last
  ingest attempt.

A file is *changed* when its sha256 differs from its last ingest attempt (or it never had one), and
*gone* when the ledger has it loaded but the landing folder does not. The plan is one run over the
range of periods (months, ``period_of``) that hold a changed or gone file, for the sources that have
one; unchanged files inside the range are no-ops for ingest (the ledger skips them). Periods the
Dagster definitions do not know yet are left out and reported (``RunPlan.beyond``).

Nothing here needs Dagster: ``defs/planning.py`` turns a plan into a run request.
docs/architecture.md#one-front-door describes the whole path.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from dagster_project.lib.ingest.landing import Fingerprints, candidate_paths
from dagster_project.lib.ingest.loader import latest_ledger_entries
from dagster_project.lib.ingest.sources import CONTRACTS
from dagster_project.settings import Settings

SOURCE_ORDER = tuple(CONTRACTS)


def period_of(partition: str) -> str:
    """The Dagster partition (a month, ``YYYY-MM-01``) of a landing file's partition key (its day,
    ``YYYY-MM-DD``, or its month's first day for the monthly audit workbooks)."""
    return partition[:7] + "-01"


@dataclass(frozen=True, order=True)
class LandingFile:
    source: str
    partition: str  # the file's own key: YYYY-MM-DD (daily sources) or YYYY-MM-01 (audits)
    path: str  # relative to the landing folder, e.g. "claims/2024-01-02.csv"
    sha256: str

    @property
    def period(self) -> str:
        return period_of(self.partition)


@dataclass(frozen=True)
class LoadedFile:
    source: str
    partition: str | None
    path: str
    sha256: str | None
    status: str


def landing_paths(settings: Settings) -> list[tuple[str, str, Path]]:
    """(source, partition, path) of every correctly named landing file, without reading any."""
    return [(source, partition, path) for source, contract in CONTRACTS.items()
            for partition, path in candidate_paths(settings.landing_dir, contract)]


def landing_days(settings: Settings) -> list[str]:
    """The partition keys with at least one landing file, sorted (no hashing)."""
    return sorted({partition for _, partition, _ in landing_paths(settings)})


def current_files(settings: Settings) -> list[LandingFile]:
    """Every accepted landing file with its sha256, through the shared change cache."""
    fingerprints = Fingerprints(settings.landing_dir, settings.fingerprints_file)
    files = [LandingFile(source, partition, path.relative_to(settings.landing_dir).as_posix(),
                         fingerprints.sha256(path))
             for source, partition, path in landing_paths(settings)]
    fingerprints.save()
    return sorted(files)


def loaded_files(settings: Settings) -> dict[str, LoadedFile]:
    """Landing path -> its latest ingest attempt, from the ledger (empty before the first load)."""
    return {e["path"]: LoadedFile(e["source"], e.get("partition"), e["path"], e["sha256"], e["status"])
            for e in latest_ledger_entries(settings.work_db)}


@dataclass(frozen=True)
class RunPlan:
    """One run: ingest of ``sources`` over the periods ``start`` .. ``end`` (none: no ingest, only
    build, gate and publish), with a key that names exactly the files it was planned for."""

    start: str | None
    end: str | None
    sources: tuple[str, ...]
    changed: tuple[LandingFile, ...]
    gone: tuple[LoadedFile, ...]
    beyond: tuple[LandingFile, ...]
    run_key: str
    reason: str

    @property
    def ingests(self) -> bool:
        return bool(self.sources)


def _digest(lines: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def plan_run(files: Sequence[LandingFile], loaded: Mapping[str, LoadedFile], *,
             known_periods: Sequence[str], rebuild_when_unchanged: bool) -> RunPlan | None:
    """The run for these files (pure). ``known_periods``: the periods the definitions have.
    ``rebuild_when_unchanged``: with nothing to ingest, still plan a build-gate-publish run (the CLI
    and the daily schedule do; the sensor does not and gets None)."""
    known = set(known_periods)
    present = {f.path for f in files}
    changed = [f for f in files if (loaded.get(f.path).sha256 if f.path in loaded else None) != f.sha256]
    gone = [e for e in loaded.values() if e.status == "loaded" and e.path not in present and e.partition]
    beyond = tuple(sorted(f for f in changed if f.period not in known))
    in_range = sorted(f for f in changed if f.period in known)
    gone_in_range = sorted((e for e in gone if period_of(e.partition) in known), key=lambda e: e.path)
    periods = sorted({f.period for f in in_range} | {period_of(e.partition) for e in gone_in_range})
    if periods:
        sources = {f.source for f in in_range} | {e.source for e in gone_in_range}
        ordered = tuple(s for s in SOURCE_ORDER if s in sources)
        key = _digest([f"{f.source}|{f.path}|{f.sha256}" for f in in_range]
                      + [f"gone|{e.source}|{e.path}|{e.sha256}" for e in sorted(gone_in_range, key=lambda e: e.path)])
        parts = [f"{len(in_range)} new or changed file(s)"] + ([f"{len(gone_in_range)} gone"] if gone_in_range else [])
        return RunPlan(periods[0], periods[-1], ordered, tuple(in_range), tuple(gone_in_range), beyond,
                       f"ingest:{periods[0][:7]}..{periods[-1][:7]}:{key}",
                       f"{' and '.join(parts)} in {periods[0][:7]} .. {periods[-1][:7]}")
    if not rebuild_when_unchanged:
        return None
    state = _digest(f"{f.path}|{f.sha256}" for f in sorted(files))
    return RunPlan(None, None, (), (), (), beyond, f"rebuild:{state}",
                   "no new or changed landing file: build, gate and publish only")


def describe_beyond(plan: RunPlan | None, files: Sequence[LandingFile], known_periods: Sequence[str]) -> str | None:
    """Why files are left out: their period is after the last one the definitions know."""
    beyond = plan.beyond if plan else tuple(f for f in files if f.period not in set(known_periods))
    if not beyond:
        return None
    last = max(known_periods) if known_periods else "none"
    first = min(beyond)
    return (f"{len(beyond)} file(s) from {first.period[:7]} on (e.g. {first.path}) are after the last period the "
            f"definitions were loaded with ({last[:7]}); the next `cs-warehouse run` or a reload of the code "
            "location picks them up")


def partitions_loaded_by_run(settings: Settings, run_id: str) -> dict[str, list[str]]:
    """source -> the file partitions whose file the run ``run_id`` loaded (from the ledger): what
    the raw quality gates of that run validate."""
    out: dict[str, set[str]] = {}
    for entry in latest_ledger_entries(settings.work_db):
        if entry.get("run_id") == run_id and entry["status"] == "loaded" and entry.get("partition"):
            out.setdefault(entry["source"], set()).add(entry["partition"])
    return {source: sorted(keys) for source, keys in out.items()}


# Ledger statuses of a landing entry whose data is not (or no longer) what the warehouse holds.
STALE_STATUSES = ("failed", "held_back")  # the partition keeps its earlier load
NOTED_STATUSES = ("ignored", "deleted")   # outside the contract, or gone after it was loaded


@dataclass(frozen=True)
class LandingProblem:
    source: str
    partition: str | None
    path: str
    status: str
    reason: str

    def describe(self) -> str:
        return f"{self.path} ({self.status}): {self.reason}"


def landing_problems(settings: Settings) -> list[LandingProblem]:
    """Every landing entry whose latest ingest attempt did not load it, from the ledger: the input a
    published version lacks (the summary, the exit code and the ``complete_inputs`` check read it)."""
    return [LandingProblem(e["source"], e.get("partition"), e["path"], e["status"], e.get("message") or "")
            for e in latest_ledger_entries(settings.work_db)
            if e["status"] in STALE_STATUSES + NOTED_STATUSES]
