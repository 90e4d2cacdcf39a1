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
from datetime import date
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from dagster_project.lib.ingest.guard import FileChanged
from dagster_project.lib.ingest.landing import Fingerprints, list_landing
from dagster_project.lib.ingest.loader import STALE_STATUSES, landing_exceptions, latest_ledger_entries, stale_partitions
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


@dataclass(frozen=True, order=True)
class IgnoredFile:
    """A landing entry outside the contract (never read); the ledger records it as ``ignored``."""

    source: str | None  # None: an entry at the top of the landing folder
    path: str
    partition: str | None
    reason: str


@dataclass(frozen=True)
class LoadedFile:
    source: str
    partition: str | None
    path: str
    sha256: str | None
    status: str


def landing_listing(settings: Settings):
    """The landing folder's accepted and ignored entries (``lib.ingest.landing.list_landing``, the
    one listing every caller uses: names and ``lstat`` only)."""
    return list_landing(settings.landing_dir, first_day=date.fromisoformat(settings.partitions_start))


def landing_paths(settings: Settings) -> list[tuple[str, str, Path]]:
    """(source, partition, path) of every accepted landing file, without reading any."""
    return [(e.source, e.partition, e.path) for e in landing_listing(settings).accepted]


def landing_days(settings: Settings) -> list[str]:
    """The partition keys with at least one landing file, sorted (no hashing)."""
    return sorted({partition for _, partition, _ in landing_paths(settings)})


def current_files(settings: Settings) -> list[LandingFile]:
    """Every accepted landing file with its sha256, through the shared change cache; a file that
    changes or vanishes while it is hashed is left for the next plan."""
    fingerprints = Fingerprints(settings.landing_dir, settings.fingerprints_file)
    files = []
    for entry in landing_listing(settings).accepted:
        try:
            files.append(LandingFile(entry.source, entry.partition, entry.rel_path, fingerprints.sha256(entry.path, entry.stat)))
        except (FileChanged, OSError):
            continue
    fingerprints.save()
    return sorted(files)


def current_ignored(settings: Settings) -> list[IgnoredFile]:
    """Every landing entry the listing ignores, with its reason."""
    return sorted(IgnoredFile(e.source, e.rel_path, e.partition, e.reason) for e in landing_listing(settings).ignored)


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
             known_periods: Sequence[str], rebuild_when_unchanged: bool,
             ignored: Sequence[IgnoredFile] = ()) -> RunPlan | None:
    """The run for these files (pure). ``known_periods``: the periods the definitions have.
    ``rebuild_when_unchanged``: with nothing to ingest, still plan a build-gate-publish run (the CLI
    and the daily schedule do; the sensor does not and gets None). ``ignored``: entries outside the
    contract; one the ledger does not list yet is recorded by an ingest of its source (any source's
    for an entry at the top of the landing folder), in its month or the last known one."""
    known = set(known_periods)
    new_ignored = [e for e in ignored if (loaded.get(e.path).status if e.path in loaded else None) != "ignored"]
    present = {f.path for f in files}
    changed = [f for f in files if (loaded.get(f.path).sha256 if f.path in loaded else None) != f.sha256]
    gone = [e for e in loaded.values() if e.status == "loaded" and e.path not in present and e.partition]
    beyond = tuple(sorted(f for f in changed if f.period not in known))
    in_range = sorted(f for f in changed if f.period in known)
    gone_in_range = sorted((e for e in gone if period_of(e.partition) in known), key=lambda e: e.path)
    last_known = max(known) if known else None
    ignored_periods = {period_of(e.partition) if e.partition and period_of(e.partition) in known else last_known
                       for e in new_ignored} - {None}
    periods = sorted({f.period for f in in_range} | {period_of(e.partition) for e in gone_in_range} | ignored_periods)
    if periods:
        sources = ({f.source for f in in_range} | {e.source for e in gone_in_range}
                   | {e.source or SOURCE_ORDER[0] for e in new_ignored})
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


@dataclass(frozen=True)
class LandingProblem:
    source: str | None
    partition: str | None
    path: str
    status: str
    reason: str

    @property
    def stale(self) -> bool:
        """The partition keeps its earlier load (a failed or held-back file)."""
        return self.status in STALE_STATUSES

    def describe(self) -> str:
        return f"{self.path} ({self.status}): {self.reason}"


def landing_problems(settings: Settings) -> list[LandingProblem]:
    """Every landing entry whose latest ingest attempt did not load it — stale partitions and
    landing exceptions (ignored, deleted) from the ledger: the input a published version lacks
    (the ``complete_inputs`` check reads it)."""
    return [LandingProblem(e["source"], e["partition"], e["path"], e["status"], e["reason"] or "")
            for e in stale_partitions(settings.work_db) + landing_exceptions(settings.work_db)]
