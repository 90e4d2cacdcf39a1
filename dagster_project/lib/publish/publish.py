"""Write–audit–publish of the marts for BI (docs/architecture.md#write-audit-publish).

1. **Write** a candidate file in ``versions/``: the allow-listed marts (the dbt catalog's published
   marts, ``allow_list``) copied from the work file (attached read-only), table and column comments
   from the same catalog, and
   ``meta.publish_manifest``. The candidate is written with an explicit DuckDB storage version so
   that DuckDB 1.x readers (many BI drivers bundle 1.x) can open it.
2. **Audit** the candidate through a separate connection that attaches it read-only: row counts
   equal the work file's, every contract column present, no PII in any text column.
3. **Publish**: copy the audited candidate next to ``published.duckdb`` and ``os.replace`` it
   over the published file (atomic on POSIX: readers that already opened the old file keep it, new
   connections see the new one). Keep the last ``KEEP_VERSIONS`` versions for rollback.

Any failure before step 3 leaves ``published.duckdb`` byte-for-byte unchanged and raises
``PublishError`` naming the check and the table.

A publish killed at any moment (kill -9) leaves either the previous published file or the new
one, never a mix: everything before ``os.replace`` happens in other files. Its debris (a
``.partial`` candidate, a ``.published.duckdb.*.tmp`` copy) is removed by the next publish —
publishes never run concurrently (one writer: the Dagster pool and the single pipeline run).
``Settings.publish_pause_seconds`` (``CSWH_PUBLISH_PAUSE_SECONDS``, tests only) pauses right before
``os.replace``, after printing
``[publish] ready to replace``, so a test can kill the process inside that window.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from dagster_project.lib.ingest.loader import landing_exceptions, latest_ledger_entries, stale_partitions
from dagster_project.lib.quality.validate import HASH_REGEX, ID_CARD_REGEX, PHONE_REGEX
from dagster_project.lib.analysis import ANALYSIS_TABLES
from dagster_project.lib.transform.catalog import HISTORY_TABLES, MANIFEST_PATH, load_manifest, published_marts
from dagster_project.lib.sql import quote_ident, sql_literal
from dagster_project.lib.transform.dbt_project import warehouse_manifest
from dagster_project.settings import Settings, eprint

# BI tools that bundle DuckDB 1.x read files of storage version v1.0.0 and later.
STORAGE_VERSION = "v1.0.0"
KEEP_VERSIONS = 5
MART_SCHEMA = "marts"
VERSION_PREFIX = "published-"

# The allow-list is the dbt catalog: the marts whose yml says ``config.meta.published: true``
# (lib/transform/catalog.py), with every column their contract declares; the tables the analysis
# assets write (``ANALYSIS_TABLES``, their comments from the work table); plus the history tables
# the monthly snapshot writes (optional: they exist once a snapshot was taken).
def allow_list(manifest_path: Path | None = None) -> dict[str, dict]:
    """table -> {"description", "columns": {column: description}, "optional"} of every published table,
    from ``manifest_path`` (the manifest of the build that wrote the marts, ``warehouse_manifest``)."""
    marts = published_marts(load_manifest(manifest_path or MANIFEST_PATH))
    tables = {name: {"description": m.description, "columns": dict(m.columns), "optional": False}
              for name, m in marts.items()}
    tables.update({name: {"description": text, "columns": {}, "optional": False}
                   for name, text in ANALYSIS_TABLES.items()})
    tables.update({name: {"description": text, "columns": {}, "optional": True}
                   for name, text in HISTORY_TABLES.items()})
    return tables




class PublishError(RuntimeError):
    """The gate or the audit refused the candidate; the published file is unchanged."""


@dataclass
class PublishResult:
    version_id: str
    published_path: Path
    version_path: Path
    row_counts: dict[str, int]
    published_at: str
    sha256: str
    pruned: list[Path] = field(default_factory=list)


def new_version_id(now: datetime, run_id: str) -> str:
    """Sortable by time; the run id makes two publishes in one second distinct."""
    return now.strftime("%Y%m%dT%H%M%S%fZ") + "-" + (run_id or "manual")[:8]


def version_file_name(version_id: str) -> str:
    return f"{VERSION_PREFIX}{version_id}.duckdb"


def failed_blocking_checks(check_summary: dict) -> list[str]:
    """Names of failed ERROR-severity checks in a check summary; accepts
    ``{"checks": [{"name", "passed", "severity"}...]}``. Pure, unit-tested."""
    failed = []
    for check in (check_summary or {}).get("checks", []):
        severity = str(check.get("severity", "ERROR")).upper()
        if not check.get("passed", False) and severity.endswith("ERROR"):
            failed.append(str(check.get("name")))
    return failed


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# write
# ---------------------------------------------------------------------------------------------

def _work_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute("select table_name from information_schema.tables "
                       "where table_catalog = 'work' and table_schema = ?", [MART_SCHEMA]).fetchall()
    return {r[0] for r in rows}


MANIFEST_COLUMN_COMMENTS = {
    "version_id": "Identifier of this published version (UTC time + run id); also the file name in versions/.",
    "run_id": "Dagster run that built and gated the marts in this version.",
    "published_at": "When this version was published (UTC).",
    "row_counts": "JSON: rows per published table.",
    "check_summary": "JSON: the quality-gate results of the run (checks passed, failed, warnings).",
    "source_files": "JSON: the landing files (path, sha256, rows) the marts were built from.",
    "storage_version": "DuckDB storage version the file is written in (readable by DuckDB 1.x).",
    "work_db": "Path of the pipeline's work file the marts were copied from.",
    "stale_partitions": "JSON: source days whose latest landing file did not load (failed or held back, with "
                        "the reason); their marts rows are those of the earlier load, if any (docs/ingest.md).",
    "landing_exceptions": "JSON: landing entries outside the contract (ignored) and loaded files deleted from the "
                          "landing folder (their rows are kept), with the reason (docs/ingest.md).",
}


def _work_comments(con: duckdb.DuckDBPyConnection, table: str) -> dict | None:
    """Table/column comments already on the work table (e.g. kpi_snapshots, which is written by
    the snapshot step rather than dbt); None if it has none."""
    row = con.execute("select comment from duckdb_tables() where database_name = 'work' and schema_name = ? "
                      "and table_name = ?", [MART_SCHEMA, table]).fetchone()
    columns = dict(con.execute("select column_name, comment from duckdb_columns() where database_name = 'work' "
                               "and schema_name = ? and table_name = ?", [MART_SCHEMA, table]).fetchall())
    if not (row and row[0]) and not any(columns.values()):
        return None
    return {"description": (row[0] if row else "") or "",
            "columns": {name: text or "" for name, text in columns.items()}}


def write_candidate(settings: Settings, candidate: Path, *, version_id: str, run_id: str,
                    published_at: str, check_summary: dict, source_files: list,
                    manifest_path: Path) -> dict[str, int]:
    """Copy the allow-listed marts into ``candidate``; returns the work file's row counts."""
    tables = allow_list(manifest_path)
    stale, exceptions = stale_partitions(settings.work_db), landing_exceptions(settings.work_db)
    con = duckdb.connect()
    try:
        # The work file is attached read-only: publish never changes it.
        con.execute(f"ATTACH {sql_literal(str(settings.work_db))} AS work (READ_ONLY)")
        con.execute(f"ATTACH {sql_literal(str(candidate))} AS cand (STORAGE_VERSION '{STORAGE_VERSION}')")
        available = _work_tables(con)
        missing = [t for t, spec in tables.items() if t not in available and not spec["optional"]]
        if missing:
            raise PublishError(f"write: the work file {settings.work_db} has no table "
                               + ", ".join(f"{MART_SCHEMA}.{t}" for t in missing))
        con.execute(f"CREATE SCHEMA cand.{MART_SCHEMA}")
        con.execute("CREATE SCHEMA cand.meta")
        row_counts: dict[str, int] = {}
        for table, spec in tables.items():
            if table not in available:
                continue
            source = f"work.{MART_SCHEMA}.{quote_ident(table)}"
            target = f"cand.{MART_SCHEMA}.{quote_ident(table)}"
            con.execute(f"CREATE TABLE {target} AS SELECT * FROM {source}")
            row_counts[table] = con.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
            doc = (spec if spec["columns"] else None) or _work_comments(con, table)
            if doc:
                if doc["description"]:
                    con.execute(f"COMMENT ON TABLE {target} IS {sql_literal(doc['description'])}")
                columns = {r[0] for r in con.execute(
                    "select column_name from information_schema.columns where table_catalog = 'cand' "
                    "and table_schema = ? and table_name = ?", [MART_SCHEMA, table]).fetchall()}
                for column, text in doc["columns"].items():
                    if text and column in columns:
                        con.execute(f"COMMENT ON COLUMN {target}.{quote_ident(column)} IS {sql_literal(text)}")
        con.execute("""
            CREATE TABLE cand.meta.publish_manifest (
                version_id VARCHAR, run_id VARCHAR, published_at TIMESTAMP, row_counts JSON,
                check_summary JSON, source_files JSON, storage_version VARCHAR, work_db VARCHAR,
                stale_partitions JSON, landing_exceptions JSON)""")
        con.execute("COMMENT ON TABLE cand.meta.publish_manifest IS "
                    "'One row describing this published version: run, time, row counts, checks, source files.'")
        for column, text in MANIFEST_COLUMN_COMMENTS.items():
            con.execute(f"COMMENT ON COLUMN cand.meta.publish_manifest.{column} IS {sql_literal(text)}")
        con.execute("INSERT INTO cand.meta.publish_manifest VALUES (?, ?, ?::TIMESTAMP, ?, ?, ?, ?, ?, ?, ?)", [
            version_id, run_id, published_at, json.dumps(row_counts),
            json.dumps(check_summary or {}, default=str, ensure_ascii=False),
            json.dumps(source_files or [], default=str, ensure_ascii=False),
            STORAGE_VERSION, str(settings.work_db),
            json.dumps(stale, default=str, ensure_ascii=False),
            json.dumps(exceptions, default=str, ensure_ascii=False)])
        con.execute("DETACH cand")
        con.execute("DETACH work")
    finally:
        con.close()
    return row_counts


# ---------------------------------------------------------------------------------------------
# audit
# ---------------------------------------------------------------------------------------------

# DuckDB's type of a column created from NULL literals alone (information_schema.columns.data_type).
UNTYPED = '"NULL"'


def audit_candidate(candidate: Path, expected_counts: dict[str, int], *,
                    names_db: Path | None = None, manifest_path: Path | None = None) -> list[str]:
    """Problems found in the candidate, each naming the check and the table (empty = pass).

    Opens the candidate read-only in a connection of its own, so what is audited is what a BI
    reader will see. ``names_db`` (the work file) provides complainant names for the PII scan.
    """
    problems: list[str] = []
    tables_allowed = allow_list(manifest_path)
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH {sql_literal(str(candidate))} AS cand (READ_ONLY)")
        names_table = None
        if names_db is not None and names_db.exists():
            con.execute(f"ATTACH {sql_literal(str(names_db))} AS work (READ_ONLY)")
            has_names = con.execute(
                "select count(*) from information_schema.columns where table_catalog = 'work' and "
                "table_schema = 'raw' and table_name = 'complaints' and column_name = 'complainant_name'"
            ).fetchone()[0]
            if has_names:
                con.execute("CREATE TEMP TABLE complainant_names AS SELECT DISTINCT complainant_name AS name "
                            "FROM work.raw.complaints WHERE complainant_name IS NOT NULL AND complainant_name <> ''")
                names_table = "complainant_names"
        tables = {r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_catalog = 'cand' "
            "and table_schema = ?", [MART_SCHEMA]).fetchall()}
        unexpected = sorted(tables - set(tables_allowed))
        if unexpected:
            problems.append(f"allow-list: tables not on the allow-list: {', '.join(unexpected)}")
        manifest = con.execute("select row_counts from cand.meta.publish_manifest").fetchall()
        if len(manifest) != 1:
            problems.append(f"manifest: meta.publish_manifest has {len(manifest)} rows, expected 1")
        manifest_counts = json.loads(manifest[0][0]) if manifest else {}
        for table, expected in expected_counts.items():
            if table not in tables:
                problems.append(f"row counts: {MART_SCHEMA}.{table} is missing from the candidate")
                continue
            qualified = f"cand.{MART_SCHEMA}.{quote_ident(table)}"
            actual = con.execute(f"select count(*) from {qualified}").fetchone()[0]
            if actual != expected or manifest_counts.get(table) != expected:
                problems.append(f"row counts: {MART_SCHEMA}.{table} has {actual} rows in the candidate, "
                                f"{expected} in the work file, {manifest_counts.get(table)} in the manifest")
            columns = [r for r in con.execute(
                "select column_name, data_type from information_schema.columns where table_catalog = 'cand' "
                "and table_schema = ? and table_name = ? order by ordinal_position", [MART_SCHEMA, table]).fetchall()]
            names = {c for c, _ in columns}
            missing = [c for c in tables_allowed.get(table, {}).get("columns", {}) if c not in names]
            if missing:
                problems.append(f"contract: {MART_SCHEMA}.{table} lacks column(s) {', '.join(missing)}")
            for column, data_type in columns:
                if data_type == UNTYPED:
                    # Every value NULL and no type from a contract: BI drivers cannot map the column
                    # (duckdb-engine: "Did not recognize type 'null'").
                    problems.append(f"contract: {MART_SCHEMA}.{table}.{column} has no type (every value NULL, "
                                    "typed by no contract); cast it in the model")
                if data_type != "VARCHAR":
                    continue
                problems.extend(_pii_problems(con, qualified, table, column, names_table))
    finally:
        con.close()
    return problems


def _pii_problems(con, qualified: str, table: str, column: str, names_table: str | None) -> list[str]:
    col = quote_ident(column)
    checks = [
        ("phone number", f"regexp_matches({col}, {sql_literal(PHONE_REGEX)}) "
                         f"and not regexp_full_match({col}, {sql_literal(HASH_REGEX)})"),
        ("ID-card number", f"regexp_matches({col}, {sql_literal(ID_CARD_REGEX)}) "
                           f"and not regexp_full_match({col}, {sql_literal(HASH_REGEX)})"),
    ]
    if names_table:
        checks.append(("complainant name", f"{col} in (select name from {names_table})"))
    problems = []
    for label, condition in checks:
        count, sample = con.execute(
            f"select count(*), any_value({col}) from {qualified} where {col} is not null and {condition}").fetchone()
        if count:
            masked = (str(sample)[:3] + "…") if sample else ""
            problems.append(f"PII scan: {MART_SCHEMA}.{table}.{column} has {count} value(s) "
                            f"containing a {label} (e.g. {masked!r})")
    return problems


# ---------------------------------------------------------------------------------------------
# publish
# ---------------------------------------------------------------------------------------------

def list_versions(settings: Settings) -> list[Path]:
    """Version files, oldest first (version ids sort by time)."""
    if not settings.versions_dir.exists():
        return []
    return sorted(settings.versions_dir.glob(f"{VERSION_PREFIX}*.duckdb"))


def prune_versions(settings: Settings, keep: int = KEEP_VERSIONS, *, protect: Path | None = None) -> list[Path]:
    versions = list_versions(settings)
    removed = []
    for path in versions[:-keep] if len(versions) > keep else []:
        if protect is not None and path.resolve() == protect.resolve():
            continue
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def remove_debris(settings: Settings) -> list[Path]:
    """Files a killed publish left behind: partial candidates and half-copied staging files."""
    found = []
    if settings.versions_dir.exists():
        found += list(settings.versions_dir.glob("*.duckdb.partial")) + list(settings.versions_dir.glob("*.partial.wal"))
    if settings.published_db.parent.exists():
        found += list(settings.published_db.parent.glob(f".{settings.published_db.name}.*.tmp"))
    for path in found:
        path.unlink(missing_ok=True)
    return found


def install_version(settings: Settings, version_file: Path) -> None:
    """Atomically make ``version_file`` the published file: copy it next to the target (same
    filesystem), fsync, then ``os.replace``. Readers holding the old file keep it."""
    target = settings.published_db
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        shutil.copyfile(version_file, staging)
        os.chmod(staging, 0o644)
        with open(staging, "rb") as handle:
            os.fsync(handle.fileno())
        pause = settings.publish_pause_seconds
        if pause > 0:  # test hook: the window between a complete candidate and the rename
            eprint(f"[publish] ready to replace {target}")
            time.sleep(pause)
        os.replace(staging, target)
    finally:
        if staging.exists():
            staging.unlink()
    # Make the rename itself durable.
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def publish(settings: Settings, run_id: str, check_summary: dict, source_files: list, *,
            manifest_path: Path | None = None, now: datetime | None = None) -> PublishResult:
    """Write, audit and atomically publish the allow-listed marts. See the module docstring."""
    failed = failed_blocking_checks(check_summary)
    if failed:
        raise PublishError("gate: blocking checks failed in this run: " + ", ".join(failed))
    if not settings.work_db.exists():
        raise PublishError(f"write: the work file {settings.work_db} does not exist")
    now = now or datetime.now(timezone.utc)
    manifest_path = manifest_path or warehouse_manifest(settings)
    version_id = new_version_id(now, run_id)
    settings.versions_dir.mkdir(parents=True, exist_ok=True)
    remove_debris(settings)
    candidate = settings.versions_dir / version_file_name(version_id)
    partial = candidate.with_suffix(".duckdb.partial")
    published_at = now.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    try:
        counts = write_candidate(
            settings, partial, version_id=version_id, run_id=run_id, published_at=published_at,
            check_summary=check_summary, source_files=source_files,
            manifest_path=manifest_path)
        problems = audit_candidate(partial, counts, names_db=settings.work_db, manifest_path=manifest_path)
        if problems:
            raise PublishError("audit failed; published file unchanged:\n  " + "\n  ".join(problems))
        os.replace(partial, candidate)
        os.chmod(candidate, 0o644)
    except BaseException:
        for leftover in (partial, Path(str(partial) + ".wal")):
            leftover.unlink(missing_ok=True)
        raise
    install_version(settings, candidate)
    pruned = prune_versions(settings, protect=candidate)
    eprint(f"[publish] version {version_id}: {len(counts)} tables, {sum(counts.values()):,} rows "
           f"-> {settings.published_db}")
    return PublishResult(version_id=version_id, published_path=settings.published_db,
                         version_path=candidate, row_counts=counts, published_at=published_at,
                         sha256=sha256_of(settings.published_db), pruned=pruned)


def ledger_source_files(settings: Settings) -> list[dict]:
    """The landing files behind this version: the latest ledger entry of each file."""
    keep = ("source", "path", "rows_loaded", "rows_quarantined", "status")
    return [{k: e[k] for k in keep} for e in latest_ledger_entries(settings.work_db)]
