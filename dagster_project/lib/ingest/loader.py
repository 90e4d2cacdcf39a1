"""The ingest driver: landing files -> ``raw.*`` of the work DuckDB file, through the ledger.

For each source, the files that are new or changed (by sha256 against ``raw._ingest_ledger``) are
staged as text by the source module's ``stage_files`` (DuckDB readers; many files per statement),
validated against the contract in SQL (``validate``), and then, in **one transaction per batch**:

1. the partitions of those files are deleted from ``raw.<source>``, ``raw.quarantine_<source>``
   (and ``raw.complaints_history``) — a re-sent day replaces that day, nothing is duplicated;
2. valid rows go to ``raw.<source>`` (complaints: ``raw.complaints_history``, then the latest state
   per ticket is recomputed into ``raw.complaints`` for the tickets touched), the others to
   ``raw.quarantine_<source>`` with a reason code and message;
3. the ledger row of each file is replaced (rows landed = loaded + quarantined).

Rows repaired on the way in (full-width digits, a Chinese-style date, thousands separators, a
JSONL record broken by a raw line break) and file-level repairs (a stray byte-order mark, CRLF, a
trailing delimiter) are counted per file into ``FileResult.notes`` and the ledger's ``message``
(for a loaded file the message is its notes, NULL if none). So is a reference to another source
that is not loaded (yet): a claim event for an unknown policy, a survey for an unknown claim.
Such rows load — the policy may arrive in a later file — and ``unknown_references`` recounts them
over everything loaded, independent of the order files arrived in.

The work file holds PII (names, phones, ID numbers): it is made readable by its owner only (0600).

An unchanged file is a no-op. A file that cannot be read (empty, wrong encoding, truncated JSON,
missing column, title row missing) fails *its* partition: the ledger records status ``failed``
with the message, the partition keeps whatever it held before, and every other file still loads.

One DuckDB connection serves a whole run. Nothing here needs Dagster.
"""

from __future__ import annotations

import getpass
import os
import shutil
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Iterable

import duckdb
import psutil

from dagster_project.settings import Settings, connect_work_db, eprint
from dagster_project.lib.ingest.sources import CONTRACTS, SOURCE_MODULES
from dagster_project.lib.ingest.complaints import refresh_latest_sql
from dagster_project.lib.ingest.contract import LINEAGE_COLUMNS, SourceContract
from dagster_project.lib.ingest.guard import (
    KnownCondition, describe, known_condition, opened_for_reading, use_private_umask,
)
from dagster_project.lib.ingest.landing import (
    Fingerprints, IgnoredEntry, LandingFile, LandingListing, discover, list_landing, sha256_of,
)
from dagster_project.lib.ingest.readers import BATCH_BYTES, _reraise_known, batches, insert_rows
from dagster_project.lib.ingest.validate import (
    csv_record_expr, duplicate_update_sql, quarantine_table_ddl, quote_ident, raw_table_ddl, validation_sql,
)

MODULES = {m.CONTRACT.source: m for m in SOURCE_MODULES}
SOURCES: tuple[str, ...] = tuple(MODULES)

LEDGER_TABLE = "raw._ingest_ledger"
LEDGER_DDL = f"""CREATE TABLE IF NOT EXISTS {LEDGER_TABLE} (
    source VARCHAR, partition VARCHAR, path VARCHAR, sha256 VARCHAR, bytes BIGINT,
    rows_landed BIGINT, rows_loaded BIGINT, rows_quarantined BIGINT,
    run_id VARCHAR, ingested_at TIMESTAMP, status VARCHAR, message VARCHAR
)"""
LEDGER_STATUSES = ("loaded", "skipped", "failed", "held_back", "ignored", "deleted")
STALE_STATUSES = ("failed", "held_back")
COMPLAINTS_HISTORY = "raw.complaints_history"
# Partitions whose earlier rows a re-sent file replaced. Incremental dbt models see new and changed
# keys, not keys a re-sent day no longer holds, so the next dbt build after a replacement is a
# full refresh; that build clears these rows (transform/dbt_project.py).
REPLACEMENTS_TABLE = "raw._ingest_replacements"
REPLACEMENTS_DDL = f"""CREATE TABLE IF NOT EXISTS {REPLACEMENTS_TABLE} (
    source VARCHAR, partition VARCHAR, rows_replaced BIGINT, replaced_at TIMESTAMP, run_id VARCHAR
)"""
# An operator's statement that a day of a source really has no records: an empty re-send of that
# day (this exact file, by sha256) then replaces the day instead of being held back.
DECLARED_EMPTY_TABLE = "raw._declared_empty"
DECLARED_EMPTY_DDL = f"""CREATE TABLE IF NOT EXISTS {DECLARED_EMPTY_TABLE} (
    source VARCHAR, partition VARCHAR, path VARCHAR, sha256 VARCHAR, reason VARCHAR,
    declared_by VARCHAR, declared_at TIMESTAMP
)"""

# File-level quarantine rule, decided per file at ingest (docs/ingest.md, "Proportionate gates"):
# a file with at least QUARANTINE_MIN_ROWS quarantined records *and* a quarantined share above
# QUARANTINE_SHARE_LIMIT is held back (its partition keeps its earlier load); fewer bad records
# than the minimum are a warning in the ledger note, however small the day.
QUARANTINE_SHARE_LIMIT = 0.05
QUARANTINE_MIN_ROWS = 5


@dataclass
class FileResult:
    source: str | None
    path: str  # relative to the landing folder
    partition: str | None
    sha256: str | None
    bytes: int | None
    status: str  # one of LEDGER_STATUSES
    # loaded: counted from the file (landed = loaded + quarantined). Any other status: what raw
    # still holds for this path from an earlier load (None if nothing); the message says what the
    # new file held.
    rows_landed: int | None = 0
    rows_loaded: int | None = 0
    rows_quarantined: int | None = 0
    message: str | None = None
    notes: list[str] = field(default_factory=list)  # repairs and unknown references (loaded files)


@dataclass
class PartitionResult:
    source: str
    partition: str
    files: list[FileResult] = field(default_factory=list)

    @property
    def status(self) -> str:
        if not self.files:
            return "no_file"
        for status in ("failed", "held_back"):
            if any(f.status == status for f in self.files):
                return status
        return "loaded" if any(f.status == "loaded" for f in self.files) else "skipped"

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded or 0 for f in self.files if f.status == "loaded")

    @property
    def rows_quarantined(self) -> int:
        return sum(f.rows_quarantined or 0 for f in self.files if f.status == "loaded")

    @property
    def messages(self) -> list[str]:
        return [f.message for f in self.files if f.status in STALE_STATUSES and f.message]


@dataclass
class IngestSummary:
    run_id: str
    files: list[FileResult] = field(default_factory=list)
    elapsed_seconds: float = 0.0
    source_seconds: dict[str, float] = field(default_factory=dict)
    ignored_files: list[str] = field(default_factory=list)  # printable paths of ignored entries
    ignored: list[IgnoredEntry] = field(default_factory=list)
    deleted: list[FileResult] = field(default_factory=list)

    def by_source(self) -> dict[str, dict[str, int]]:
        """source -> files, loaded/skipped/failed/held-back files, rows landed/loaded/quarantined."""
        out: dict[str, dict[str, int]] = {}
        for s in SOURCES:
            files = [f for f in self.files if f.source == s]
            if not files and s not in self.source_seconds:
                continue
            loaded = [f for f in files if f.status == "loaded"]
            out[s] = {
                "files": len(files),
                "loaded_files": len(loaded),
                "skipped_files": sum(f.status == "skipped" for f in files),
                "failed_files": sum(f.status == "failed" for f in files),
                "held_back_files": sum(f.status == "held_back" for f in files),
                "ignored_entries": sum(e.source == s for e in self.ignored),
                "rows_landed": sum(f.rows_landed or 0 for f in loaded),
                "rows_loaded": sum(f.rows_loaded or 0 for f in loaded),
                "rows_quarantined": sum(f.rows_quarantined or 0 for f in loaded),
            }
        return out

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "failed"]

    @property
    def held_back(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "held_back"]

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded or 0 for f in self.files if f.status == "loaded")

    @property
    def rows_quarantined(self) -> int:
        return sum(f.rows_quarantined or 0 for f in self.files if f.status == "loaded")

    def partitions(self) -> list[PartitionResult]:
        grouped: dict[tuple[str, str], PartitionResult] = {}
        for f in self.files:
            grouped.setdefault((f.source, f.partition), PartitionResult(f.source, f.partition)).files.append(f)
        return list(grouped.values())

    def format_table(self) -> str:
        header = (f"{'source':<13}{'files':>7}{'loaded':>8}{'skipped':>8}{'failed':>7}{'held':>6}"
                  f"{'rows loaded':>13}{'quarantined':>13}{'rows/s':>10}")
        lines = [header, "-" * len(header)]
        for source, c in self.by_source().items():
            seconds = self.source_seconds.get(source, 0.0)
            rate = f"{c['rows_landed'] / seconds:,.0f}" if seconds > 0 and c["rows_landed"] else "-"
            lines.append(
                f"{source:<13}{c['files']:>7}{c['loaded_files']:>8}{c['skipped_files']:>8}"
                f"{c['failed_files']:>7}{c['held_back_files']:>6}{c['rows_loaded']:>13,}{c['rows_quarantined']:>13,}"
                f"{rate:>10}")
        for f in self.failed:
            lines.append(f"FAILED {f.message}")
        for f in self.held_back:
            lines.append(f"HELD BACK {f.message}")
        for e in self.ignored:
            lines.append(f"IGNORED {e.rel_path}: {e.reason}")
        for f in self.deleted:
            lines.append(f"DELETED {f.message}")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------ schema


WORK_FILE_MODE = 0o600  # names, phones and ID numbers live in raw.*: owner only


def restrict_work_file(path: Path) -> None:
    """Owner-only permissions on a work file created before the private umask (older versions)."""
    for p in (path, Path(str(path) + ".wal")):
        if p.exists() and (p.stat().st_mode & 0o777) != WORK_FILE_MODE:
            os.chmod(p, WORK_FILE_MODE)


def connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    """The run's connection to the work file. The process keeps a private umask from here on, so
    the file, its WAL and DuckDB's spill files are created 0600 (guard.use_private_umask). A lock
    held by another process, a read-only folder or a full disk raise a KnownCondition."""
    try:
        settings.warehouse_dir.mkdir(parents=True, exist_ok=True)  # shared folder: the user's umask
        use_private_umask()
        con = connect_work_db(settings.work_db)
    except (duckdb.Error, OSError) as exc:
        condition = known_condition(exc, settings.work_db)
        if condition is not None:
            raise condition from None
        raise
    restrict_work_file(settings.work_db)
    ensure_schema(con)
    return con


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``raw`` and every raw, quarantine, history and ledger table (idempotent)."""
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    for contract in CONTRACTS.values():
        con.execute(raw_table_ddl(contract))
        con.execute(quarantine_table_ddl(contract))
    con.execute(raw_table_ddl(CONTRACTS["complaints"], COMPLAINTS_HISTORY))
    con.execute(LEDGER_DDL)
    con.execute(REPLACEMENTS_DDL)
    con.execute(DECLARED_EMPTY_DDL)


WORKDIR_PREFIX = "cswh-ingest-"


def sweep_stale_workdirs(tmp_root: Path | None = None) -> list[Path]:
    """Remove the scratch folders of ingest processes that are gone: ``TemporaryDirectory``
    cannot clean up after a SIGKILL, and a folder may hold normalised landing rows. A folder is
    named ``cswh-ingest-<pid>-<random>``; one whose process is alive, that another user owns, or
    that is not named so, is left alone. Returns what was removed."""
    root = Path(tmp_root or tempfile.gettempdir())
    removed = []
    for folder in root.glob(f"{WORKDIR_PREFIX}*-*"):
        pid = folder.name[len(WORKDIR_PREFIX):].partition("-")[0]
        if not pid.isdigit() or not folder.is_dir() or folder.is_symlink():
            continue
        try:
            if folder.stat().st_uid != os.getuid() or psutil.pid_exists(int(pid)):
                continue
        except OSError:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def ingest_workdir() -> tempfile.TemporaryDirectory:
    """A scratch folder for one ingest call, named after this process so the next start can tell a
    killed run's folder from a running one's (``sweep_stale_workdirs``)."""
    sweep_stale_workdirs()
    return tempfile.TemporaryDirectory(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-")


def new_run_id() -> str:
    return f"manual-{datetime.now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


# ------------------------------------------------------------------------------------ driver


def ingest_all_files(settings: Settings, run_id: str | None = None, *, sources: Iterable[str] | None = None,
                     progress: bool = False, today: date | None = None) -> IngestSummary:
    """Load every new or changed landing file of every (or the given) source into the work file."""
    run_id = run_id or new_run_id()
    summary = IngestSummary(run_id)
    started = time.perf_counter()
    fingerprints = Fingerprints(settings.landing_dir, settings.fingerprints_file)
    listing = list_landing(settings.landing_dir, first_day=date.fromisoformat(settings.partitions_start), today=today)
    con = connect(settings)
    try:
        with ingest_workdir() as workdir:
            chosen = list(sources) if sources is not None else list(SOURCES)
            summary.ignored += record_landing_entries(con, None, listing, run_id)
            for source in chosen:
                contract = _contract(source)
                t0 = time.perf_counter()
                ignored = record_landing_entries(con, source, listing, run_id)
                summary.ignored += ignored
                summary.deleted += record_deleted(con, source, listing, run_id)
                files = discover(settings.landing_dir, contract, fingerprints=fingerprints, listing=listing)
                results = ingest_files(con, contract, files, run_id, Path(workdir))
                summary.files.extend(results)
                summary.source_seconds[source] = time.perf_counter() - t0
                if progress:
                    c = summary.by_source().get(source, {})
                    eprint(f"[ingest] {source}: {c.get('files', 0)} files ({c.get('loaded_files', 0)} loaded, "
                           f"{c.get('skipped_files', 0)} unchanged, {c.get('failed_files', 0)} failed, "
                           f"{c.get('held_back_files', 0)} held back, {len(ignored)} ignored), "
                           f"{c.get('rows_loaded', 0):,} rows loaded, {c.get('rows_quarantined', 0):,} "
                           f"quarantined in {summary.source_seconds[source]:.1f} s")
                    for f in results:
                        if f.status in STALE_STATUSES:
                            eprint(f"[ingest]   {f.status.upper()} {f.message}")
    finally:
        con.close()
        fingerprints.save()
    summary.ignored_files = [e.rel_path for e in summary.ignored]
    summary.elapsed_seconds = time.perf_counter() - started
    return summary


def ingest_partitions(settings: Settings, source: str, partition_keys: Iterable[str], run_id: str,
                      *, today: date | None = None) -> list[PartitionResult]:
    """Load the file(s) of the given partitions of one source (one connection, batched); the
    source's ignored and deleted landing entries are recorded in the ledger on the way."""
    contract = _contract(source)
    keys = sorted(set(partition_keys))
    listing = list_landing(settings.landing_dir, first_day=date.fromisoformat(settings.partitions_start), today=today)
    fingerprints = Fingerprints(settings.landing_dir, settings.fingerprints_file)
    files = discover(settings.landing_dir, contract, partitions=set(keys), fingerprints=fingerprints, listing=listing)
    fingerprints.save()
    con = connect(settings)
    try:
        record_landing_entries(con, None, listing, run_id)
        record_landing_entries(con, source, listing, run_id)
        record_deleted(con, source, listing, run_id)
        with ingest_workdir() as workdir:
            results = ingest_files(con, contract, files, run_id, Path(workdir))
    finally:
        con.close()
    by_partition = {k: PartitionResult(source, k) for k in keys}
    for r in results:
        by_partition.setdefault(r.partition, PartitionResult(source, r.partition)).files.append(r)
    return [by_partition[k] for k in keys]


def ingest_partition(settings: Settings, source: str, partition_key: str, run_id: str) -> PartitionResult:
    """One source, one partition (the file of that day, or month for audits)."""
    return ingest_partitions(settings, source, [partition_key], run_id)[0]


def _contract(source: str) -> SourceContract:
    try:
        return CONTRACTS[source]
    except KeyError:
        raise ValueError(f"unknown source {source!r}; expected one of {', '.join(CONTRACTS)}") from None


def _ledger_rows(con, source: str | None) -> dict[str, dict]:
    cursor = con.execute(f"SELECT * FROM {LEDGER_TABLE} WHERE source IS NOT DISTINCT FROM ?", [source])
    names = [d[0] for d in cursor.description]
    return {row["path"]: row for row in (dict(zip(names, r)) for r in cursor.fetchall())}


def _kept(previous: dict | None) -> tuple[int | None, int | None, int | None]:
    """The counts of the earlier load that raw still holds for a path (None if none)."""
    if previous is None or previous.get("rows_loaded") is None:
        return None, None, None
    return previous["rows_landed"], previous["rows_loaded"], previous["rows_quarantined"]


def record_landing_entries(con, source: str | None, listing: LandingListing, run_id: str) -> list[IgnoredEntry]:
    """Replace the ledger's ``ignored`` rows of ``source`` (None: the top of the landing folder)
    by the entries the listing ignores now. An entry that was loaded before keeps the counts of
    that load (its rows stay in raw; docs/ingest.md)."""
    entries = listing.ignored_for(source)
    previous = _ledger_rows(con, source)
    now = datetime.now().replace(microsecond=0)
    rows = []
    for e in entries:
        kept = _kept(previous.get(e.rel_path))
        message = f"{e.rel_path}: ignored, not read: {e.reason}"
        if kept[1] is not None:
            message += f" (its earlier load, {kept[1]} row(s), stays in raw)"
        rows.append(FileResult(source, e.rel_path, e.partition, None, None, "ignored", *kept, message=message))
    stale = [p for p, r in previous.items() if r["status"] == "ignored"]
    replace_paths = stale + [r.path for r in rows]
    if replace_paths:
        con.execute(f"DELETE FROM {LEDGER_TABLE} WHERE source IS NOT DISTINCT FROM ? AND path IN "
                    "(SELECT unnest(?::VARCHAR[]))", [source, replace_paths])
    _insert_ledger(con, rows, run_id, now)
    return entries


def record_deleted(con, source: str, listing: LandingListing, run_id: str) -> list[FileResult]:
    """Ledger rows ``deleted`` for files that were loaded (or tried) and are gone from the landing
    folder. Their rows stay in raw and keep counting in the marts (docs/ingest.md, "Deleted
    files"); the row keeps the counts so the raw gates still reconcile."""
    present = {e.rel_path for e in listing.for_source(source)} | {e.rel_path for e in listing.ignored_for(source)}
    previous = _ledger_rows(con, source)
    now = datetime.now().replace(microsecond=0)
    gone = []
    for path, row in sorted(previous.items()):
        if path in present or row["status"] in ("ignored", "deleted"):
            continue
        kept = _kept(row)
        what = f"its {kept[1]} row(s) stay in raw and in the marts" if kept[1] is not None else "nothing of it is in raw"
        gone.append(FileResult(source, path, row["partition"], None, row["bytes"], "deleted", *kept,
                               message=f"{path}: deleted from the landing folder after its last ingest "
                                       f"(sha256 {str(row['sha256'])[:12]}, status {row['status']}); {what}"))
    if gone:
        con.execute(f"DELETE FROM {LEDGER_TABLE} WHERE source = ? AND path IN (SELECT unnest(?::VARCHAR[]))",
                    [source, [g.path for g in gone]])
        _insert_ledger(con, gone, run_id, now)
    return gone


def ingest_files(con: duckdb.DuckDBPyConnection, contract: SourceContract, files: list[LandingFile],
                 run_id: str, workdir: Path) -> list[FileResult]:
    """Ingest the given files of one source; unchanged ones (same path and sha256 loaded before)
    are skipped. Returns one result per file."""
    previous = _ledger_rows(con, contract.source)
    declared = {(r[0], r[1]) for r in con.execute(
        f"SELECT path, sha256 FROM {DECLARED_EMPTY_TABLE} WHERE source = ?", [contract.source]).fetchall()}
    results: list[FileResult] = []
    todo: list[LandingFile] = []
    ingested_at = datetime.now().replace(microsecond=0)
    for f in files:
        row = previous.get(f.rel_path)
        if row is not None and (row["sha256"], row["status"]) == (f.sha256, "loaded"):
            results.append(FileResult(f.source, f.rel_path, f.partition, f.sha256, f.bytes, "skipped",
                                      row["rows_landed"], row["rows_loaded"], row["rows_quarantined"],
                                      message="unchanged since the last load"))
        else:
            todo.append(f)
    context = _BatchContext(previous, declared, run_id, ingested_at, workdir)
    for batch in batches(todo, BATCH_BYTES):
        try:
            results += _ingest_batch(con, contract, batch, context)
            continue
        except KnownCondition:
            raise
        except Exception as exc:  # noqa: BLE001 - a failed statement fails these files, not the run
            _reraise_known(exc, "the work file")
            _try_rollback(con)
            broken = [(batch[0], exc)] if len(batch) == 1 else []
        if len(batch) > 1:  # again file by file: only a file that breaks the statement fails
            for f in batch:
                try:
                    results += _ingest_batch(con, contract, [f], context)
                except KnownCondition:
                    raise
                except Exception as exc:  # noqa: BLE001
                    _reraise_known(exc, "the work file")
                    _try_rollback(con)
                    broken.append((f, exc))
        for f, exc in broken:
            failed = FileResult(f.source, f.rel_path, f.partition, f.sha256, f.bytes, "failed",
                                message=f"{f.rel_path}: not loaded: {describe(exc)}")
            _finish_unloaded(failed, previous.get(f.rel_path))
            _write_ledger(con, contract, [failed], run_id, ingested_at)
            results.append(failed)
    order = {f.rel_path: i for i, f in enumerate(files)}
    return sorted(results, key=lambda r: order[r.path])


def _try_rollback(con) -> None:
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass


@dataclass
class _BatchContext:
    previous: dict[str, dict]
    declared: set[tuple[str, str]]
    run_id: str
    ingested_at: datetime
    workdir: Path


def _finish_unloaded(result: FileResult, previous: dict | None) -> None:
    """A file that did not load: its partition keeps the earlier load (counts carried, said so)."""
    result.rows_landed, result.rows_loaded, result.rows_quarantined = _kept(previous)
    if result.rows_loaded is not None:
        result.message += (f" (partition {result.partition} keeps the rows of the file loaded before, "
                           f"sha256 {str(previous['sha256'])[:12]}: {result.rows_loaded} row(s))")


def _declare_hint(f: LandingFile) -> str:
    return (f"if the day really has no records, declare it: cs-warehouse declare-empty {f.source} "
            f"{f.partition} --reason '...'")


def _ingest_batch(con, contract: SourceContract, files: list[LandingFile], ctx: _BatchContext) -> list[FileResult]:
    module = MODULES[contract.source]
    changed: dict[str, str] = {}

    def on_changed(f: LandingFile, reason: str) -> None:
        changed.setdefault(f.rel_path, f"{f.rel_path}: not loaded: {reason}")

    with opened_for_reading(files, on_changed) as ready:
        staged = module.stage_files(con, ready, "_staging", ctx.workdir)
    for path, message in changed.items():
        staged.failures[path] = message
    if changed:
        con.execute("DELETE FROM _staging WHERE _file IN (SELECT unnest(?::VARCHAR[]))", [list(changed)])
    con.execute(f"CREATE OR REPLACE TEMP TABLE _checked AS {validation_sql(contract, staged.table)}")
    con.execute(duplicate_update_sql(contract, "_checked"))
    for statement in getattr(module, "cross_row_sql", lambda: [])():
        con.execute(statement)
    counts = {
        path: (landed, quarantined)
        for path, landed, quarantined in con.execute(
            "SELECT _file, count(*), count(*) FILTER (WHERE reason_code IS NOT NULL) FROM _checked GROUP BY _file"
        ).fetchall()
    }
    notes = _row_notes(con, contract)
    results = []
    for f in files:
        previous = ctx.previous.get(f.rel_path)
        had_rows = bool(previous and (previous.get("rows_landed") or 0) > 0)
        is_declared = (f.rel_path, f.sha256) in ctx.declared
        failure = staged.failures.get(f.rel_path)
        landed, quarantined = counts.get(f.rel_path, (0, 0))
        empty = f.rel_path in staged.empty or (failure is None and landed == 0)
        if empty and had_rows and not is_declared:
            result = FileResult(f.source, f.rel_path, f.partition, f.sha256, f.bytes, "held_back",
                                message=f"{f.rel_path}: held back: the re-sent file has no records ({f.bytes} bytes) "
                                        f"while the day had {previous['rows_landed']} record(s); {_declare_hint(f)}")
        elif empty and is_declared and (failure is None or f.rel_path in staged.empty):
            result = FileResult(f.source, f.rel_path, f.partition, f.sha256, f.bytes, "loaded", 0, 0, 0,
                                message=f"declared empty by the operator: the day has no records "
                                        f"({DECLARED_EMPTY_TABLE})")
        elif failure is not None:
            result = FileResult(f.source, f.rel_path, f.partition, f.sha256, f.bytes, "failed", message=failure)
        elif quarantined >= QUARANTINE_MIN_ROWS and quarantined > QUARANTINE_SHARE_LIMIT * landed:
            result = FileResult(f.source, f.rel_path, f.partition, f.sha256, f.bytes, "held_back",
                                message=f"{f.rel_path}: held back: {quarantined} of {landed} record(s) quarantined "
                                        f"({quarantined / landed:.0%}, above {QUARANTINE_SHARE_LIMIT:.0%} with at least "
                                        f"{QUARANTINE_MIN_ROWS}); see raw.quarantine_{contract.source} after a re-send, "
                                        "or fix the export")
        else:
            file_notes = staged.notes.get(f.rel_path, []) + notes.get(f.rel_path, [])
            if quarantined and quarantined > QUARANTINE_SHARE_LIMIT * landed:
                file_notes.append(f"warning: {quarantined} of {landed} record(s) quarantined "
                                  f"({quarantined / landed:.0%}), fewer than the {QUARANTINE_MIN_ROWS} that hold a file back")
            result = FileResult(f.source, f.rel_path, f.partition, f.sha256, f.bytes, "loaded",
                                landed, landed - quarantined, quarantined,
                                message="; ".join(file_notes) or None, notes=file_notes)
        if result.status != "loaded":
            _finish_unloaded(result, previous)
        results.append(result)
    loaded = [r for r in results if r.status == "loaded"]
    con.execute("CREATE OR REPLACE TEMP TABLE _load_files (path VARCHAR, partition VARCHAR)")
    insert_rows(con, "_load_files", [(r.path, r.partition) for r in loaded])
    con.execute("DELETE FROM _checked WHERE _file NOT IN (SELECT path FROM _load_files)")
    con.execute("BEGIN TRANSACTION")
    try:
        if loaded:
            _replace_partitions(con, contract, ctx.run_id, ctx.ingested_at)
        _write_ledger(con, contract, results, ctx.run_id, ctx.ingested_at)
        con.execute("COMMIT")
    except Exception as exc:  # noqa: BLE001 - roll back, record why (scrubbed), keep going
        _try_rollback(con)
        _reraise_known(exc, "the work file")
        message = f"load of {len(files)} file(s) rolled back: {describe(exc)}"
        for r in results:
            r.status, r.notes = "failed", []
            r.message = f"{r.path}: {message}"
            _finish_unloaded(r, ctx.previous.get(r.path))
        _write_ledger(con, contract, results, ctx.run_id, ctx.ingested_at)
    for table in ("_staging", "_checked"):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    return results


def _row_notes(con, contract: SourceContract) -> dict[str, list[str]]:
    """Per file of ``_checked``: the repairs made to loaded rows and the references to rows of
    another source that are not loaded (yet), as counted notes."""
    out: dict[str, list[str]] = defaultdict(list)
    for path, note, n in con.execute(
        """SELECT _file, note, count(*) FROM (
               SELECT _file, _line, unnest(string_split(_notes, '; ')) AS note FROM _checked
               WHERE _notes IS NOT NULL AND reason_code IS NULL)
           GROUP BY _file, note ORDER BY _file, min(_line)"""
    ).fetchall():
        out[path].append(f"repaired {note} ({n} row{'s' if n != 1 else ''})" if not note.startswith("record ")
                         else f"repaired {note}")
    for path, column, table, n in unknown_reference_rows(con, contract, "_checked"):
        out[path].append(f"{n} row{'s' if n != 1 else ''} with a {column} not (yet) in {table}: loaded, "
                         "counted by unknown_references")
    return dict(out)


def unknown_reference_sql(contract: SourceContract, relation: str, *, group_by_file: bool) -> list[tuple[str, str, str]]:
    """(column, referenced table, SQL) per reference of ``contract``: rows of ``relation`` (valid
    rows only, if it has a reason_code) whose reference is not in the referenced raw table."""
    out = []
    for column, table, ref_column in contract.references:
        valid = "reason_code IS NULL AND " if relation == "_checked" else ""
        select = "_file, count(*)" if group_by_file else "count(*)"
        group = " GROUP BY _file ORDER BY _file" if group_by_file else ""
        out.append((column, table, f"""SELECT {select} FROM {relation} c
            WHERE {valid}c.{quote_ident(column)} IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM {table} t WHERE t.{quote_ident(ref_column)} = c.{quote_ident(column)}){group}"""))
    return out


def unknown_reference_rows(con, contract: SourceContract, relation: str) -> list[tuple[str, str, str, int]]:
    rows = []
    for column, table, sql in unknown_reference_sql(contract, relation, group_by_file=True):
        rows += [(path, column, table, n) for path, n in con.execute(sql).fetchall()]
    return rows


def unknown_references(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """``"<source>.<column> -> <table>"`` -> rows loaded in raw whose reference is not loaded,
    over everything loaded so far (so independent of the order in which files arrived)."""
    out = {}
    for contract in CONTRACTS.values():
        for column, table, sql in unknown_reference_sql(contract, contract.raw_table, group_by_file=False):
            out[f"{contract.source}.{column} -> {table}"] = int(con.execute(sql).fetchone()[0])
    return out


def _replace_partitions(con, contract: SourceContract, run_id: str, ingested_at: datetime) -> None:
    """Inside the caller's transaction: swap the partitions of ``_load_files`` for ``_checked``."""
    partitions = "(SELECT partition FROM _load_files)"
    columns = ", ".join(quote_ident(c) for c in contract.column_names)
    lineage = ", ".join(quote_ident(n) for n, _ in LINEAGE_COLUMNS)
    # _checked keeps the staging order (file, line), so no ORDER BY (and no sort) is needed.
    select_valid = (f"SELECT {columns}, _file, _line, _partition, CAST(? AS TIMESTAMP), ? "
                    "FROM _checked WHERE reason_code IS NULL")
    is_complaints = contract.source == "complaints"
    target = COMPLAINTS_HISTORY if is_complaints else contract.raw_table
    if is_complaints:
        # Tickets whose latest state may change: those in the replaced partitions and the new ones.
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _affected_complaints AS
            SELECT complaint_no FROM {COMPLAINTS_HISTORY} WHERE _partition IN {partitions}
            UNION SELECT complaint_no FROM _checked WHERE reason_code IS NULL"""
        )
    con.execute(
        f"""INSERT INTO {REPLACEMENTS_TABLE}
        SELECT ?, _partition, count(*), CAST(? AS TIMESTAMP), ? FROM {target}
        WHERE _partition IN {partitions} GROUP BY _partition""",
        [contract.source, ingested_at, run_id])
    con.execute(f"DELETE FROM {target} WHERE _partition IN {partitions}")
    con.execute(f"DELETE FROM {contract.quarantine_table} WHERE _partition IN {partitions}")
    con.execute(f"INSERT INTO {target} ({columns}, {lineage}) {select_valid}", [ingested_at, run_id])
    con.execute(
        f"""INSERT INTO {contract.quarantine_table}
        SELECT c._file, c._line, c._partition, coalesce(c.raw_text, {csv_record_expr(contract, 's')}),
               c.reason_code, c.reason, CAST(? AS TIMESTAMP), ?
        FROM _checked c LEFT JOIN _staging s ON s._file = c._file AND s._line = c._line
        WHERE c.reason_code IS NOT NULL ORDER BY c._file, c._line""",
        [ingested_at, run_id],
    )
    if is_complaints:
        con.execute(refresh_latest_sql("_affected_complaints"))
        con.execute("DROP TABLE _affected_complaints")


def _insert_ledger(con, results: list[FileResult], run_id: str, ingested_at: datetime) -> None:
    insert_rows(con, LEDGER_TABLE, [
        (r.source, r.partition, r.path, r.sha256, r.bytes, r.rows_landed, r.rows_loaded, r.rows_quarantined,
         run_id, ingested_at, r.status, r.message)
        for r in results])


def _write_ledger(con, contract: SourceContract, results: list[FileResult], run_id: str,
                  ingested_at: datetime) -> None:
    """Replace the ledger row of each file (one row per landing path: its latest attempt)."""
    if not results:
        return
    con.execute(f"DELETE FROM {LEDGER_TABLE} WHERE source = ? AND path IN (SELECT unnest(?::VARCHAR[]))",
                [contract.source, [r.path for r in results]])
    _insert_ledger(con, results, run_id, ingested_at)


def ledger_counts(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, int]]:
    """source -> loaded files and rows landed/loaded/quarantined according to the ledger."""
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for source, files, landed, loaded, quarantined in con.execute(
        f"""SELECT source, count(*), sum(rows_landed), sum(rows_loaded), sum(rows_quarantined)
        FROM {LEDGER_TABLE} WHERE status = 'loaded' GROUP BY source ORDER BY source"""
    ).fetchall():
        out[source] = {"files": files, "rows_landed": int(landed or 0), "rows_loaded": int(loaded or 0),
                       "rows_quarantined": int(quarantined or 0)}
    return dict(out)


def latest_ledger_entries(work_db: Path) -> list[dict]:
    """The latest ingest attempt of every landing file (one dict per file), read with a short-lived
    read-only connection; empty if there is no work file or no ledger yet. The run summary, the
    publish manifest and the CLI's change detection all read the ledger through this."""
    if not Path(work_db).exists():
        return []
    con = duckdb.connect(str(work_db), read_only=True)
    try:
        cursor = con.execute(f"""
            SELECT source, partition, path, sha256, run_id, rows_landed, rows_loaded, rows_quarantined, status, message
            FROM {LEDGER_TABLE}
            QUALIFY row_number() OVER (PARTITION BY source, path ORDER BY ingested_at DESC) = 1
            ORDER BY source, path""")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]
    except duckdb.CatalogException:
        return []
    finally:
        con.close()


def _entries_with_status(work_db: Path, statuses: tuple[str, ...]) -> list[dict]:
    return [{"source": e["source"], "partition": e["partition"], "path": e["path"], "status": e["status"],
             "reason": e["message"]}
            for e in latest_ledger_entries(work_db) if e["status"] in statuses]


def stale_partitions(work_db: Path) -> list[dict]:
    """Partitions whose latest landing file did not load — ``failed`` (unreadable) or
    ``held_back`` (refused by a file-level rule) — as dicts (source, partition, path, status,
    reason). Each keeps its earlier load, if any; the run summary, the publish manifest and the
    exit code of ``cs-warehouse run`` report them (docs/ingest.md)."""
    return _entries_with_status(work_db, STALE_STATUSES)


def landing_exceptions(work_db: Path) -> list[dict]:
    """Landing entries outside the contract (``ignored``) and loaded files gone from the landing
    folder (``deleted``), as dicts like ``stale_partitions``."""
    return _entries_with_status(work_db, ("ignored", "deleted"))


def declare_empty(settings: Settings, source: str, day: str, reason: str, *, declared_by: str | None = None,
                  today: date | None = None) -> str:
    """Record that the current landing file of ``source`` for ``day`` (a day, or any day of the
    month for a monthly source) is meant to be empty: its next ingest replaces the partition with
    no rows instead of holding the re-send back. Bound to the file's sha256 (a later, different
    file needs a new declaration), kept in ``raw._declared_empty`` and named in the ledger."""
    contract = _contract(source)
    if not reason or not reason.strip():
        raise ValueError("a reason is required (who asked for it, why the day has no records)")
    partition = date.fromisoformat(day)
    partition = partition.replace(day=1) if contract.partitioning == "monthly" else partition
    listing = list_landing(settings.landing_dir, [contract], first_day=date.fromisoformat(settings.partitions_start), today=today)
    entry = next((e for e in listing.for_source(source) if e.partition == partition.isoformat()), None)
    if entry is None:
        raise ValueError(f"no landing file of {source} for {partition} under {settings.landing_dir}")
    sha = sha256_of(entry.path, entry.identity)
    con = connect(settings)
    try:
        con.execute(f"INSERT INTO {DECLARED_EMPTY_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [source, entry.partition, entry.rel_path, sha, reason.strip()[:500],
                     declared_by or getpass.getuser(), datetime.now().replace(microsecond=0)])
    finally:
        con.close()
    return (f"{entry.rel_path} (sha256 {sha[:12]}) declared empty: the next run replaces {source} "
            f"{entry.partition} with no records if the file has none")
