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

import os
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Iterable

import duckdb

from dagster_project.settings import Settings, connect_work_db, eprint
from dagster_project.lib.ingest import CONTRACTS, SOURCE_MODULES
from dagster_project.lib.ingest.contract import LINEAGE_COLUMNS, SourceContract
from dagster_project.lib.ingest.landing import Fingerprints, LandingFile, discover, unexpected_files
from dagster_project.lib.ingest.readers import BATCH_BYTES, batches, insert_rows
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
COMPLAINTS_HISTORY = "raw.complaints_history"
# Partitions whose earlier rows a re-sent file replaced. Incremental dbt models see new and changed
# keys, not keys a re-sent day no longer holds, so the next dbt build after a replacement is a
# full refresh; that build clears these rows (transform/dbt_project.py).
REPLACEMENTS_TABLE = "raw._ingest_replacements"
REPLACEMENTS_DDL = f"""CREATE TABLE IF NOT EXISTS {REPLACEMENTS_TABLE} (
    source VARCHAR, partition VARCHAR, rows_replaced BIGINT, replaced_at TIMESTAMP, run_id VARCHAR
)"""


@dataclass
class FileResult:
    source: str
    path: str  # relative to the landing folder
    partition: str
    sha256: str
    bytes: int
    status: str  # loaded | skipped (unchanged) | failed
    rows_landed: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
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
        if any(f.status == "failed" for f in self.files):
            return "failed"
        return "loaded" if any(f.status == "loaded" for f in self.files) else "skipped"

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_quarantined(self) -> int:
        return sum(f.rows_quarantined for f in self.files)

    @property
    def messages(self) -> list[str]:
        return [f.message for f in self.files if f.status == "failed" and f.message]


@dataclass
class IngestSummary:
    run_id: str
    files: list[FileResult] = field(default_factory=list)
    elapsed_seconds: float = 0.0
    source_seconds: dict[str, float] = field(default_factory=dict)
    ignored_files: list[str] = field(default_factory=list)  # misnamed files in a source folder

    def by_source(self) -> dict[str, dict[str, int]]:
        """source -> files, loaded_files, skipped_files, failed_files, rows landed/loaded/quarantined."""
        out: dict[str, dict[str, int]] = {}
        for s in SOURCES:
            files = [f for f in self.files if f.source == s]
            if not files and s not in self.source_seconds:
                continue
            out[s] = {
                "files": len(files),
                "loaded_files": sum(f.status == "loaded" for f in files),
                "skipped_files": sum(f.status == "skipped" for f in files),
                "failed_files": sum(f.status == "failed" for f in files),
                "rows_landed": sum(f.rows_landed for f in files),
                "rows_loaded": sum(f.rows_loaded for f in files),
                "rows_quarantined": sum(f.rows_quarantined for f in files),
            }
        return out

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "failed"]

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_quarantined(self) -> int:
        return sum(f.rows_quarantined for f in self.files)

    def partitions(self) -> list[PartitionResult]:
        grouped: dict[tuple[str, str], PartitionResult] = {}
        for f in self.files:
            grouped.setdefault((f.source, f.partition), PartitionResult(f.source, f.partition)).files.append(f)
        return list(grouped.values())

    def format_table(self) -> str:
        header = (f"{'source':<13}{'files':>7}{'loaded':>8}{'skipped':>8}{'failed':>7}"
                  f"{'rows loaded':>13}{'quarantined':>13}{'rows/s':>10}")
        lines = [header, "-" * len(header)]
        for source, c in self.by_source().items():
            seconds = self.source_seconds.get(source, 0.0)
            rate = f"{c['rows_landed'] / seconds:,.0f}" if seconds > 0 and c["rows_landed"] else "-"
            lines.append(
                f"{source:<13}{c['files']:>7}{c['loaded_files']:>8}{c['skipped_files']:>8}"
                f"{c['failed_files']:>7}{c['rows_loaded']:>13,}{c['rows_quarantined']:>13,}{rate:>10}"
            )
        for f in self.failed:
            lines.append(f"FAILED {f.message}")
        if self.ignored_files:
            lines.append(f"ignored {len(self.ignored_files)} misnamed file(s): {', '.join(self.ignored_files[:5])}")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------ schema


WORK_FILE_MODE = 0o600  # names, phones and ID numbers live in raw.*: owner only


def restrict_work_file(path: Path) -> None:
    """Owner-only permissions on the work file and its WAL (DuckDB creates them with the umask)."""
    for p in (path, Path(str(path) + ".wal")):
        if p.exists() and (p.stat().st_mode & 0o777) != WORK_FILE_MODE:
            os.chmod(p, WORK_FILE_MODE)


def connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    settings.warehouse_dir.mkdir(parents=True, exist_ok=True)
    # Create the file under a private umask so it is never readable by others, not even briefly.
    old_umask = os.umask(0o077)
    try:
        con = connect_work_db(settings.work_db)
    finally:
        os.umask(old_umask)
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


def new_run_id() -> str:
    return f"manual-{datetime.now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


# ------------------------------------------------------------------------------------ driver


def ingest_all_files(settings: Settings, run_id: str | None = None, *, sources: Iterable[str] | None = None,
                     progress: bool = False) -> IngestSummary:
    """Load every new or changed landing file of every (or the given) source into the work file."""
    run_id = run_id or new_run_id()
    summary = IngestSummary(run_id)
    started = time.perf_counter()
    fingerprints = Fingerprints(settings.landing_dir, settings.fingerprints_file)
    con = connect(settings)
    try:
        with tempfile.TemporaryDirectory(prefix="cswh-ingest-") as workdir:
            for source in (list(sources) if sources is not None else SOURCES):
                contract = _contract(source)
                t0 = time.perf_counter()
                files = discover(settings.landing_dir, contract, fingerprints=fingerprints)
                summary.ignored_files += [p.relative_to(settings.landing_dir).as_posix()
                                          for p in unexpected_files(settings.landing_dir, contract)]
                results = ingest_files(con, contract, files, run_id, Path(workdir))
                summary.files.extend(results)
                summary.source_seconds[source] = time.perf_counter() - t0
                if progress:
                    c = summary.by_source().get(source, {})
                    eprint(f"[ingest] {source}: {c.get('files', 0)} files ({c.get('loaded_files', 0)} loaded, "
                           f"{c.get('skipped_files', 0)} unchanged, {c.get('failed_files', 0)} failed), "
                           f"{c.get('rows_loaded', 0):,} rows loaded, {c.get('rows_quarantined', 0):,} "
                           f"quarantined in {summary.source_seconds[source]:.1f} s")
                    for f in results:
                        if f.status == "failed":
                            eprint(f"[ingest]   FAILED {f.message}")
    finally:
        con.close()
        fingerprints.save()
    summary.elapsed_seconds = time.perf_counter() - started
    return summary


def ingest_partitions(settings: Settings, source: str, partition_keys: Iterable[str], run_id: str) -> list[PartitionResult]:
    """Load the file(s) of the given partitions of one source (one connection, batched)."""
    contract = _contract(source)
    keys = sorted(set(partition_keys))
    fingerprints = Fingerprints(settings.landing_dir, settings.fingerprints_file)
    files = discover(settings.landing_dir, contract, partitions=set(keys), fingerprints=fingerprints)
    fingerprints.save()
    con = connect(settings)
    try:
        with tempfile.TemporaryDirectory(prefix="cswh-ingest-") as workdir:
            results = ingest_files(con, contract, files, run_id, Path(workdir))
    finally:
        con.close()
    by_partition = {k: PartitionResult(source, k) for k in keys}
    for r in results:
        by_partition[r.partition].files.append(r)
    return [by_partition[k] for k in keys]


def ingest_partition(settings: Settings, source: str, partition_key: str, run_id: str) -> PartitionResult:
    """One source, one partition (the file of that day, or month for audits)."""
    return ingest_partitions(settings, source, [partition_key], run_id)[0]


def _contract(source: str) -> SourceContract:
    try:
        return CONTRACTS[source]
    except KeyError:
        raise ValueError(f"unknown source {source!r}; expected one of {', '.join(CONTRACTS)}") from None


def ingest_files(con: duckdb.DuckDBPyConnection, contract: SourceContract, files: list[LandingFile],
                 run_id: str, workdir: Path) -> list[FileResult]:
    """Ingest the given files of one source; unchanged ones (same path and sha256 loaded before)
    are skipped. Returns one result per file."""
    ledger = {}
    rows_before = {}
    for path, sha, status, loaded_rows in con.execute(
        f"SELECT path, sha256, status, rows_loaded FROM {LEDGER_TABLE} WHERE source = ?", [contract.source]
    ).fetchall():
        ledger[path] = (sha, status)
        rows_before[path] = loaded_rows or 0
    results: list[FileResult] = []
    todo: list[LandingFile] = []
    ingested_at = datetime.now().replace(microsecond=0)
    for f in files:
        if ledger.get(f.rel_path) == (f.sha256, "loaded"):
            results.append(FileResult(f.source, f.rel_path, f.partition, f.sha256, f.bytes, "skipped",
                                      message="unchanged since the last load"))
        elif f.bytes == 0 and ledger.get(f.rel_path, ("", ""))[1] == "loaded" and rows_before.get(f.rel_path):
            # A 0-byte JSON Lines file is a day without records — but as a re-send of a day that
            # had records it is far more likely a failed export than a day emptied on purpose.
            failed = FileResult(f.source, f.rel_path, f.partition, f.sha256, f.bytes, "failed",
                                message=f"{f.rel_path}: empty file (0 bytes) re-sent for a day that loaded "
                                        f"{rows_before[f.rel_path]} row(s); not loaded")
            failed.message += (f" (partition {f.partition} keeps the rows of the file loaded before, "
                               f"sha256 {ledger[f.rel_path][0][:12]})")
            _write_ledger(con, contract, [failed], run_id, ingested_at)
            results.append(failed)
        else:
            todo.append(f)
    for batch in batches(todo, BATCH_BYTES):
        try:
            batch_results = _ingest_batch(con, contract, batch, run_id, ingested_at, workdir)
        except (duckdb.Error, OSError, ValueError) as exc:
            # Not a bad file but a failed statement (disk full, a bug): fail these files, keep going.
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
            batch_results = [FileResult(f.source, f.rel_path, f.partition, f.sha256, f.bytes, "failed",
                                        message=f"{f.rel_path}: not loaded, the batch failed: {reason}")
                             for f in batch]
            _write_ledger(con, contract, batch_results, run_id, ingested_at)
        for result in batch_results:
            previous = ledger.get(result.path)
            if result.status == "failed" and previous and previous[1] == "loaded":
                # Say so: the raw rows of this partition are still those of the earlier file.
                result.message += f" (partition {result.partition} keeps the rows of the file loaded before, " \
                                  f"sha256 {previous[0][:12]})"
                _write_ledger(con, contract, [result], run_id, ingested_at)
            results.append(result)
    order = {f.rel_path: i for i, f in enumerate(files)}
    return sorted(results, key=lambda r: order[r.path])


def _ingest_batch(con, contract: SourceContract, files: list[LandingFile], run_id: str,
                  ingested_at: datetime, workdir: Path) -> list[FileResult]:
    module = MODULES[contract.source]
    staged = module.stage_files(con, files, "_staging", workdir)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _checked AS {validation_sql(contract, staged.table)}")
    con.execute(duplicate_update_sql(contract, "_checked"))
    counts = {
        path: (landed, quarantined)
        for path, landed, quarantined in con.execute(
            "SELECT _file, count(*), count(*) FILTER (WHERE reason_code IS NOT NULL) FROM _checked GROUP BY _file"
        ).fetchall()
    }
    loaded = [f for f in files if f.rel_path not in staged.failures]
    failed = [f for f in files if f.rel_path in staged.failures]
    notes = _row_notes(con, contract)
    results = []
    for f in loaded:
        landed, quarantined = counts.get(f.rel_path, (0, 0))
        file_notes = staged.notes.get(f.rel_path, []) + notes.get(f.rel_path, [])
        results.append(FileResult(f.source, f.rel_path, f.partition, f.sha256, f.bytes, "loaded",
                                  landed, landed - quarantined, quarantined,
                                  message="; ".join(file_notes) or None, notes=file_notes))
    for f in failed:
        results.append(FileResult(f.source, f.rel_path, f.partition, f.sha256, f.bytes, "failed",
                                  message=staged.failures[f.rel_path]))

    con.execute("CREATE OR REPLACE TEMP TABLE _load_files (path VARCHAR, partition VARCHAR)")
    insert_rows(con, "_load_files", [(f.rel_path, f.partition) for f in loaded])
    con.execute("BEGIN TRANSACTION")
    try:
        if loaded:
            _replace_partitions(con, contract, run_id, ingested_at)
        _write_ledger(con, contract, results, run_id, ingested_at)
        con.execute("COMMIT")
    except Exception as exc:
        con.execute("ROLLBACK")
        message = f"load of {len(files)} file(s) rolled back: {type(exc).__name__}: {exc}".splitlines()[0]
        for r in results:
            r.status, r.rows_landed, r.rows_loaded, r.rows_quarantined = "failed", 0, 0, 0
            r.message = f"{r.path}: {message}"
        _write_ledger(con, contract, results, run_id, ingested_at)
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
        from dagster_project.lib.ingest.complaints import refresh_latest_sql

        con.execute(refresh_latest_sql("_affected_complaints"))
        con.execute("DROP TABLE _affected_complaints")


def _write_ledger(con, contract: SourceContract, results: list[FileResult], run_id: str,
                  ingested_at: datetime) -> None:
    if not results:
        return
    con.execute(f"DELETE FROM {LEDGER_TABLE} WHERE source = ? AND path IN (SELECT unnest(?::VARCHAR[]))",
                [contract.source, [r.path for r in results]])
    rows = [
        (r.source, r.partition, r.path, r.sha256, r.bytes,
         r.rows_landed if r.status == "loaded" else None,
         r.rows_loaded if r.status == "loaded" else None,
         r.rows_quarantined if r.status == "loaded" else None,
         run_id, ingested_at, r.status, r.message)
        for r in results
    ]
    insert_rows(con, LEDGER_TABLE, rows)


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
