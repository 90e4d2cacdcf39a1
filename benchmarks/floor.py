"""The floor: the pipeline's work done by DuckDB alone, in one process, with no orchestration.

It is the yardstick the pipeline is measured against (README, "Benchmark"), so it must do the
*same* work, only without Dagster, dbt's runner or Great Expectations around it:

1. **ingest** — read every landing file (CSV via ``read_csv``, JSON via ``read_json``, xlsx via
   openpyxl, the GBK call logs transcoded to UTF-8 first, which is necessary work), validate every
   row with the ingest's own contract SQL (``dagster_project.lib.ingest.validate``: the same checks,
   the same first-failing reason), drop within-file duplicate keys, and write ``raw.<source>`` and
   ``raw.quarantine_<source>`` with the lineage columns;
2. **dbt** — load the seeds from their CSVs, then run the compiled SQL of every model in
   dependency order (taken from dbt's own manifest after ``dbt compile``: the same SQL), wrapped in
   ``create or replace view/table`` by materialization, then every dbt data test as a count;
3. **gates** — every Great Expectations suite in ``expectations/`` as plain SQL aggregates (one
   scan per table for the column expectations; the unexpected-rows queries counted);
4. **publish** — copy the published marts into a new file and rename it into place.

``compare_marts`` then asserts that the floor's marts equal the pipeline's, table by table, so the
floor cannot look fast by doing less.

The one-day floor (``--only-files``) measures the nightly run the same way: it starts from the
work file a full floor left, loads only the new day's files (replacing their partitions), runs the
manifest's incremental SQL (``delete+insert`` by unique key for incremental models, views and
tables as above; seeds are unchanged and stay), every test but those on the seeds alone (as the
pipeline's incremental build), every gate, and publishes.

Run as ``python -m benchmarks.floor --landing DIR --out DIR --manifest FILE --result FILE`` so the
benchmark measures its wall time and the peak memory of its own process.
"""

from __future__ import annotations

import argparse
import graphlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import duckdb

from dagster_project.settings import EXPECTATIONS_DIR, REPO_ROOT
from dagster_project.lib.analysis import ANALYSES
from dagster_project.lib.ingest.contract import LINEAGE_COLUMNS, QUARANTINE_COLUMNS, SourceContract
from dagster_project.lib.report.alerts import RECORDING_TIME_COLUMNS, record_alerts_in
from dagster_project.lib.transform.dbt_project import seed_tests

# The compiled SQL names relations "work"."schema"."name" after the pipeline's file name, so the
# floor's file must carry the same name.
FLOOR_DB_NAME = "work.duckdb"
FLOOR_PUBLISHED_NAME = "published.duckdb"
FLOOR_RUN_ID = "floor"
DBT_PACKAGE = "cs_warehouse"


# ---------------------------------------------------------------------------------------------
# Stage bookkeeping
# ---------------------------------------------------------------------------------------------

@dataclass
class FloorStage:
    name: str
    seconds: float
    rows: int | None
    started_at: float
    ended_at: float
    detail: dict = field(default_factory=dict)


class StageClock:
    def __init__(self) -> None:
        self.stages: list[FloorStage] = []

    @contextmanager
    def stage(self, name: str) -> Iterator[dict]:
        info: dict = {"rows": None, "detail": {}}
        started_at = time.time()
        t0 = time.perf_counter()
        yield info
        seconds = time.perf_counter() - t0
        self.stages.append(FloorStage(name, seconds, info["rows"], started_at, started_at + seconds,
                                      info["detail"]))
        print(f"[floor] {name}: {seconds:.2f}s rows={info['rows']}", file=sys.stderr, flush=True)


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def lit(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


# ---------------------------------------------------------------------------------------------
# 1. Ingest
# ---------------------------------------------------------------------------------------------

def files_values_sql(files: list[tuple[str, str, str]]) -> str:
    """A VALUES relation (path, rel_path, partition) to map read_csv's ``filename`` back to the
    ledger's relative path and the file's partition."""
    rows = ", ".join(f"({lit(p)}, {lit(r)}, {lit(k)})" for p, r, k in files)
    return f"(VALUES {rows}) AS files(path, rel_path, partition_key)"


def staging_meta_columns() -> tuple[str, ...]:
    """The ingest's staging meta columns (``_file, _line, _partition, raw_text, _pre_*``)."""
    from dagster_project.lib.ingest import validate as ingest_validate

    return tuple(getattr(ingest_validate, "STAGING_META_COLUMNS",
                         ("_file", "_line", "_partition", "raw_text", "_pre_reason", "_pre_message")))


def null_meta_columns() -> str:
    """The reader-side meta columns (raw text, pre-validation reasons and notes) as NULLs: the
    floor reads clean, well-formed files, so no record carries a reader finding."""
    return ", ".join(f"CAST(NULL AS VARCHAR) AS {q(c)}" for c in staging_meta_columns()
                     if c not in ("_file", "_line", "_partition"))


def _staging_select(contract: SourceContract, source_sql: str, files_sql: str, value_exprs: dict[str, str]) -> str:
    """The ingest's staging shape (``_file, _line, _partition, raw_text, _pre_reason,
    _pre_message`` + every contract column as VARCHAR) over one multi-file scan.

    ``_line`` is the 1-based record number inside its file: the scan's ordinality minus the first
    ordinality of the file (DuckDB numbers a multi-file scan in file order)."""
    cols = ",\n    ".join(f"CAST({value_exprs[c.name]} AS VARCHAR) AS {q(c.name)}" for c in contract.columns)
    return (
        "SELECT files.rel_path AS _file,\n"
        "    CAST(s.ordinality - min(s.ordinality) OVER (PARTITION BY s.filename) + 1 AS BIGINT) AS _line,\n"
        "    files.partition_key AS _partition,\n"
        f"    {null_meta_columns()},\n"
        f"    {cols}\n"
        f"FROM {source_sql} AS s JOIN {files_sql} ON s.filename = files.path"
    )


def transcode_to_utf8(path: Path, encoding: str, out_dir: Path) -> Path:
    """GBK (or any non-UTF-8) landing file re-encoded as UTF-8 for DuckDB's CSV reader."""
    target = out_dir / path.name
    with open(path, "r", encoding=encoding, newline="") as src, open(target, "w", encoding="utf-8", newline="") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    return target


def csv_staging_sql(contract: SourceContract, files: list[tuple[str, str, str]]) -> str:
    paths = "[" + ", ".join(lit(p) for p, _, _ in files) + "]"
    scan = (f"read_csv({paths}, header = true, all_varchar = true, filename = true, delim = ',', quote = '\"', "
            "escape = '\"') WITH ORDINALITY")
    by_contract = {v: k for k, v in contract.header_map.items()}
    exprs = {c.name: f"s.{q(by_contract.get(c.name, c.name))}" for c in contract.columns}
    return _staging_select(contract, scan, files_values_sql(files), exprs)


def json_staging_sql(contract: SourceContract, files: list[tuple[str, str, str]]) -> str:
    paths = "[" + ", ".join(lit(p) for p, _, _ in files) + "]"
    fmt = "newline_delimited" if contract.file_format == "jsonl" else "array"
    scan = f"read_json({paths}, format = {lit(fmt)}, records = false, filename = true) WITH ORDINALITY"
    exprs = {}
    for c in contract.columns:
        path = contract.json_paths.get(c.name, f"$.{c.name}")
        exprs[c.name] = f"json_extract_string(s.json, {lit(path)})"
    return _staging_select(contract, scan, files_values_sql(files), exprs)


def xlsx_rows(path: Path, contract: SourceContract) -> list[list[object]]:
    """Data rows of a workbook below its header row (the row holding the contract names), each
    as [sheet_row, values...] in contract column order, values as the ingest renders them."""
    import openpyxl

    from dagster_project.lib.ingest.audits import cell_text

    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        ws = wb.worksheets[0]
        header_index: dict[str, int] | None = None
        out = []
        for row_no, values in enumerate(ws.iter_rows(values_only=True), start=1):
            if header_index is None:
                names = [str(v).strip() if v is not None else "" for v in values]
                if contract.columns[0].name in names:
                    header_index = {n: i for i, n in enumerate(names)}
                continue
            if all(cell_text(v) is None for v in values):
                continue
            record = [row_no]
            for c in contract.columns:
                i = header_index.get(c.name)
                record.append(cell_text(values[i]) if i is not None and i < len(values) else None)
            out.append(record)
        return out
    finally:
        wb.close()


def ingest_source(con: duckdb.DuckDBPyConnection, contract: SourceContract, landing_dir: Path,
                  scratch: Path, only_files: set[str] | None = None) -> dict:
    """Load one source; returns landed/loaded/quarantined counts. With ``only_files`` (paths
    relative to the landing folder) only those files load, into the tables a full floor left: their
    partitions' earlier rows are replaced, as a re-sent file replaces its partition."""
    from dagster_project.lib.ingest.landing import candidate_paths
    from dagster_project.lib.ingest import validate as ingest_validate
    from dagster_project.lib.ingest.validate import quarantine_table_ddl, raw_table_ddl, validation_sql

    con.execute(raw_table_ddl(contract))
    con.execute(quarantine_table_ddl(contract))
    if contract.source == "complaints":
        con.execute(raw_table_ddl(contract, "raw.complaints_history"))
    con.execute(LEDGER_DDL)
    root = landing_dir.resolve()
    files = [(str(p.resolve()), p.resolve().relative_to(root).as_posix(), part)
             for part, p in candidate_paths(landing_dir, contract)]
    if only_files is not None:
        files = [f for f in files if f[1] in only_files]
    found = [(part, Path(path)) for path, _, part in files]
    if not found:
        return {"files": 0, "landed": 0, "loaded": 0, "quarantined": 0}
    partitions = sorted({part for part, _ in found})
    if only_files is not None:
        replaced = f"({_in_list(partitions)})"
        targets = [contract.raw_table, contract.quarantine_table]
        targets += ["raw.complaints_history"] if contract.source == "complaints" else []
        for target in targets:
            con.execute(f"DELETE FROM {target} WHERE _partition IN {replaced}")
    staging = f"floor_staging_{contract.source}"
    if contract.file_format == "csv":
        if contract.encoding.lower() not in ("utf-8", "utf-8-sig", "utf8"):
            tdir = scratch / contract.source
            tdir.mkdir(parents=True, exist_ok=True)
            files = [(str(transcode_to_utf8(Path(p), contract.encoding, tdir)), r, k) for p, r, k in files]
        source_rel = f"({csv_staging_sql(contract, files)}) AS staging"
    elif contract.file_format in ("jsonl", "json_array"):
        source_rel = f"({json_staging_sql(contract, files)}) AS staging"
    elif contract.file_format == "xlsx":
        cols = ", ".join(f"{q(c.name)} VARCHAR" for c in contract.columns)
        extra = [c for c in staging_meta_columns() if c not in ("_file", "_line", "_partition")]
        con.execute(f"CREATE OR REPLACE TEMP TABLE {staging} (_file VARCHAR, _line BIGINT, _partition VARCHAR, "
                    + "".join(f"{q(c)} VARCHAR, " for c in extra) + f"{cols})")
        rows = [[rel, r[0], part, *([None] * len(extra)), *r[1:]]
                for path, rel, part in files for r in xlsx_rows(Path(path), contract)]
        if rows:  # one INSERT for all workbooks (executemany would run one statement per row)
            values = ", ".join("(" + ", ".join("NULL" if v is None else (str(v) if isinstance(v, int) else lit(v))
                                               for v in row) + ")" for row in rows)
            con.execute(f"INSERT INTO {staging} VALUES {values}")
        source_rel = staging
    else:
        raise ValueError(f"{contract.source}: unsupported file format {contract.file_format!r}")

    checked = f"floor_checked_{contract.source}"
    # Read and validate in one statement (the ingest's own contract SQL), then mark the within-file
    # duplicate keys the way the ingest does.
    con.execute(f"CREATE OR REPLACE TEMP TABLE {checked} AS {validation_sql(contract, source_rel)}")
    if hasattr(ingest_validate, "duplicate_update_sql"):
        con.execute(ingest_validate.duplicate_update_sql(contract, checked))
    else:  # the earlier, window-based form
        dedup = ingest_validate.duplicate_check_sql(contract, checked)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {checked} AS {dedup}")
    cols = ", ".join(q(c.name) for c in contract.columns)
    con.execute(f"INSERT INTO {contract.raw_table} SELECT {cols}, _file, _line, _partition, now()::TIMESTAMP, "
                f"{lit(FLOOR_RUN_ID)} FROM {checked} WHERE reason_code IS NULL")
    # raw_text only for the rejected rows: the record re-assembled from its landed values.
    q_cols = ", ".join(n for n, _ in QUARANTINE_COLUMNS)
    con.execute(f"INSERT INTO {contract.quarantine_table} ({q_cols}) SELECT _file, _line, _partition, "
                f"raw_text, reason_code, reason, now()::TIMESTAMP, {lit(FLOOR_RUN_ID)} "
                f"FROM {checked} WHERE reason_code IS NOT NULL")
    landed, loaded = con.execute(f"SELECT count(*), count(*) FILTER (WHERE reason_code IS NULL) FROM {checked}").fetchone()
    write_ledger(con, contract, checked, found, landing_dir)
    con.execute(f"DROP TABLE IF EXISTS {staging}")
    con.execute(f"DROP TABLE {checked}")
    post_load(con, contract, partitions if only_files is not None else None)
    return {"files": len(files), "landed": int(landed), "loaded": int(loaded), "quarantined": int(landed - loaded)}


LEDGER_DDL = """CREATE TABLE IF NOT EXISTS raw._ingest_ledger (
    source VARCHAR, partition VARCHAR, path VARCHAR, sha256 VARCHAR, bytes BIGINT,
    rows_landed BIGINT, rows_loaded BIGINT, rows_quarantined BIGINT,
    run_id VARCHAR, ingested_at TIMESTAMP, status VARCHAR, message VARCHAR)"""


def write_ledger(con: duckdb.DuckDBPyConnection, contract: SourceContract, checked: str,
                 found: list[tuple[str, Path]], landing_dir: Path) -> None:
    """One ledger row per file, with its sha256 (the pipeline hashes every file to skip unchanged
    ones on the next run, so the floor does that work too)."""
    from dagster_project.lib.ingest.landing import sha256_of

    con.execute(LEDGER_DDL)
    counts = {f: (n, bad) for f, n, bad in con.execute(
        f"SELECT _file, count(*), count(*) FILTER (WHERE reason_code IS NOT NULL) FROM {checked} GROUP BY _file").fetchall()}
    rows = []
    for partition, path in found:
        rel = path.resolve().relative_to(landing_dir.resolve()).as_posix()
        landed, bad = counts.get(rel, (0, 0))
        rows.append((contract.source, partition, rel, sha256_of(path), path.stat().st_size, landed, landed - bad, bad,
                     FLOOR_RUN_ID, "loaded", None))
    if rows:  # one statement: DuckDB's executemany runs a statement per row
        values = ", ".join("(" + ", ".join("NULL" if v is None else (lit(v) if isinstance(v, str) else str(v)) for v in r[:9])
                           + f", now()::TIMESTAMP, {lit(r[9])}, NULL)" for r in rows)
        con.execute(f"INSERT INTO raw._ingest_ledger VALUES {values}")


def post_load(con: duckdb.DuckDBPyConnection, contract: SourceContract, partitions: list[str] | None = None) -> None:
    """Source-specific derived raw tables the ingest keeps (complaints: every state in
    ``raw.complaints_history``, the latest state per ticket by ``updated_ts`` in ``raw.complaints``).
    With ``partitions``, only those partitions' rows (just inserted into ``raw.complaints``) join
    the history."""
    if contract.source != "complaints":
        return
    cols = ", ".join(q(c.name) for c in contract.columns)
    lineage = ", ".join(q(n) for n, _ in LINEAGE_COLUMNS)
    if partitions is None:
        con.execute("CREATE OR REPLACE TABLE raw.complaints_history AS SELECT * FROM raw.complaints")
    else:
        con.execute(f"INSERT INTO raw.complaints_history SELECT * FROM raw.complaints WHERE _partition IN ({_in_list(partitions)})")
    con.execute(f"""
        CREATE OR REPLACE TABLE raw.complaints AS
        SELECT {cols}, {lineage} FROM raw.complaints_history
        QUALIFY row_number() OVER (PARTITION BY complaint_no ORDER BY updated_ts DESC, _partition DESC, _source_line DESC) = 1
    """)


# ---------------------------------------------------------------------------------------------
# 2. dbt: seeds, models in dependency order, tests
# ---------------------------------------------------------------------------------------------

def build_order(manifest: dict, package: str = DBT_PACKAGE) -> list[str]:
    """Seeds and models of the package in an order where every node follows its parents (ties
    broken by name so the order is stable)."""
    nodes = {uid: n for uid, n in manifest["nodes"].items()
             if n.get("resource_type") in ("model", "seed") and n.get("package_name") == package
             and (n.get("config") or {}).get("enabled", True)}
    sorter = graphlib.TopologicalSorter()
    for uid, node in sorted(nodes.items()):
        parents = [p for p in (node.get("depends_on") or {}).get("nodes", []) if p in nodes]
        sorter.add(uid, *parents)
    order: list[str] = []
    sorter.prepare()
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        order.extend(ready)
        sorter.done(*ready)
    return order


def model_sql(node: dict, *, incremental: bool = False) -> list[str]:
    """The statements that materialize one compiled model the way dbt-duckdb does. With
    ``incremental`` (the one-day floor: the manifest was compiled against the tables a full floor
    left, so ``is_incremental()`` was true), an incremental model's rows replace those with the same
    unique key (dbt's ``delete+insert``)."""
    config = node.get("config") or {}
    materialized = config.get("materialized", "view")
    relation = node["relation_name"]
    code = (node.get("compiled_code") or "").strip().rstrip(";")
    if not code:
        raise ValueError(f"model {node['unique_id']} has no compiled_code: run `dbt compile` first")
    if materialized == "ephemeral":
        return []  # inlined as a CTE into its children's compiled code
    if materialized == "view":
        return [f"CREATE OR REPLACE VIEW {relation} AS (\n{code}\n)"]
    if materialized not in ("table", "incremental"):
        raise ValueError(f"model {node['unique_id']}: materialization {materialized!r} is not supported by the floor")
    if incremental and materialized == "incremental":
        return delete_insert_sql(node, relation, code)
    contract = (config.get("contract") or {}).get("enforced")
    columns = node.get("columns") or {}
    if contract and columns and all(c.get("data_type") for c in columns.values()):
        # An enforced contract fixes names, order and types of the table, and its constraints
        # (not null, checks) are the table's: dbt-duckdb creates the table from the contract and
        # inserts the model's rows into it, so DuckDB checks every row. The floor does the same.
        names = ", ".join(q(c["name"]) for c in columns.values())
        return [f"CREATE OR REPLACE TABLE {relation} ({contract_table_elements(node)})",
                f"INSERT INTO {relation} ({names}) SELECT {names} FROM (\n{code}\n) AS model_subq"]
    return [f"CREATE OR REPLACE TABLE {relation} AS (\n{code}\n)"]


def delete_insert_sql(node: dict, relation: str, code: str) -> list[str]:
    """dbt's ``delete+insert`` on DuckDB: the new rows into a temporary table, the target's rows
    with their keys deleted, the new rows inserted by column name (pure)."""
    config = node.get("config") or {}
    strategy = config.get("incremental_strategy") or "delete+insert"
    if strategy != "delete+insert":
        raise ValueError(f"model {node['unique_id']}: incremental strategy {strategy!r} is not supported by the floor")
    keys = config.get("unique_key")
    keys = [keys] if isinstance(keys, str) else list(keys or [])
    if not keys:
        raise ValueError(f"model {node['unique_id']}: delete+insert needs a unique_key")
    new_rows = "floor_incremental_rows"
    match = " AND ".join(f"{relation}.{q(k)} = {new_rows}.{q(k)}" for k in keys)
    names = ", ".join(q(c["name"]) for c in (node.get("columns") or {}).values() if c.get("data_type"))
    insert = (f"INSERT INTO {relation} ({names}) SELECT {names} FROM {new_rows}" if names
              else f"INSERT INTO {relation} BY NAME SELECT * FROM {new_rows}")
    return [f"CREATE OR REPLACE TEMP TABLE {new_rows} AS (\n{code}\n)",
            f"DELETE FROM {relation} USING {new_rows} WHERE {match}",
            insert,
            f"DROP TABLE {new_rows}"]


def contract_table_elements(node: dict) -> str:
    """Column definitions and constraints of an enforced contract, as DDL (pure)."""
    def rendered(constraint: dict) -> str:
        kind = constraint["type"]
        if kind == "not_null":
            return "NOT NULL"
        if kind == "check":
            return f"CHECK ({constraint['expression']})"
        if kind in ("unique", "primary_key"):
            return kind.replace("_", " ").upper() + (f" ({', '.join(map(q, constraint['columns']))})"
                                                      if constraint.get("columns") else "")
        raise ValueError(f"model {node['unique_id']}: constraint type {kind!r} is not supported by the floor")

    elements = [" ".join([q(c["name"]), c["data_type"], *map(rendered, c.get("constraints") or [])])
                for c in node["columns"].values()]
    elements += [rendered(c) for c in node.get("constraints") or []]
    return ", ".join(elements)


def seed_sql(node: dict, project_dir: Path) -> list[str]:
    path = project_dir / node["original_file_path"]
    column_types = (node.get("config") or {}).get("column_types") or {}
    types = ""
    if column_types:
        types = ", types = {" + ", ".join(f"{lit(k)}: {lit(v)}" for k, v in column_types.items()) + "}"
    return [f"CREATE OR REPLACE TABLE {node['relation_name']} AS "
            f"SELECT * FROM read_csv({lit(str(path))}, header = true{types})"]


def schemas_of(manifest: dict, order: list[str]) -> list[str]:
    return sorted({manifest["nodes"][uid]["schema"] for uid in order})


def test_count_sql(node: dict) -> str:
    code = (node.get("compiled_code") or "").strip().rstrip(";")
    fail_calc = (node.get("config") or {}).get("fail_calc") or "count(*)"
    return f"SELECT {fail_calc} FROM (\n{code}\n) AS dbt_internal_test"


_ENV_VAR = re.compile(r"""\{\{\s*env_var\(\s*['"]([^'"]+)['"]\s*\)\s*\}\}""")


def profile_settings(project_dir: Path, env: dict | None = None) -> dict[str, str]:
    """The session variables among the DuckDB ``settings`` of the project's dbt profile
    (dbt-duckdb issues ``SET <key> = <value>`` for each on every connection), with ``env_var()``
    resolved — e.g. the PII salt the customer-key macro reads. Resource settings (memory_limit)
    are left out: the floor is DuckDB at its defaults, its fastest."""
    import yaml

    env = os.environ if env is None else env
    profiles = yaml.safe_load((project_dir / "profiles.yml").read_text(encoding="utf-8"))
    project = yaml.safe_load((project_dir / "dbt_project.yml").read_text(encoding="utf-8"))
    profile = profiles[project["profile"]]
    output = profile["outputs"][profile.get("target", "dev")]
    out = {}
    for key, value in (output.get("settings") or {}).items():
        if key.upper().startswith("VARIABLE "):
            out[key] = _ENV_VAR.sub(lambda m: env[m.group(1)], str(value))
    return out


def apply_profile_settings(con: duckdb.DuckDBPyConnection, project_dir: Path) -> None:
    for key, value in profile_settings(project_dir).items():
        con.execute(f"SET {key} = {lit(value)}")


def run_dbt_sql(con: duckdb.DuckDBPyConnection, manifest: dict, project_dir: Path, *,
                incremental: bool = False) -> dict:
    apply_profile_settings(con, project_dir)
    order = build_order(manifest)
    for schema in schemas_of(manifest, order):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {q(schema)}")
    models = seeds = 0
    for uid in order:
        node = manifest["nodes"][uid]
        if node["resource_type"] == "seed":
            statements = [] if incremental else seed_sql(node, project_dir)  # unchanged seeds stay loaded
        else:
            statements = model_sql(node, incremental=incremental)
        for statement in statements:
            try:
                con.execute(statement)
            except duckdb.Error as exc:
                raise RuntimeError(f"floor: {uid} failed: {exc}") from exc
        seeds += node["resource_type"] == "seed"
        models += node["resource_type"] == "model"
    return {"models": models, "seeds": seeds}


def run_dbt_tests(con: duckdb.DuckDBPyConnection, manifest: dict, *, skip: frozenset[str] = frozenset()) -> dict:
    failed: list[str] = []
    count = 0
    for uid, node in sorted(manifest["nodes"].items()):
        if node.get("resource_type") != "test" or node.get("package_name") != DBT_PACKAGE or uid in skip:
            continue
        if not (node.get("config") or {}).get("enabled", True):
            continue
        failures = con.execute(test_count_sql(node)).fetchone()[0]
        count += 1
        severity = str((node.get("config") or {}).get("severity", "error")).lower()
        if failures and severity == "error":
            failed.append(f"{node['name']}: {failures}")
    return {"tests": count, "failed": failed}


def mart_rows(con: duckdb.DuckDBPyConnection) -> int:
    tables = con.execute("SELECT table_schema, table_name FROM information_schema.tables "
                         "WHERE table_schema = 'marts' AND table_type = 'BASE TABLE'").fetchall()
    return sum(con.execute(f"SELECT count(*) FROM {q(s)}.{q(t)}").fetchone()[0] for s, t in tables)


# ---------------------------------------------------------------------------------------------
# 3. Gates: the GX suites as SQL aggregates
# ---------------------------------------------------------------------------------------------

def _val(value) -> str:
    """A kwarg value as a SQL literal (GX suites give numbers, booleans or ISO date strings)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return lit(value) if isinstance(value, str) else repr(value)


def _in_list(values) -> str:
    return ", ".join(_val(v) for v in values)


def expectation_aggregate(expectation: dict) -> str | None:
    """One SQL aggregate giving the *unexpected* count of a column expectation over its table
    (or the observed value for a table-level one); None if it is not an aggregate."""
    kind = expectation["type"]
    kw = expectation.get("kwargs") or {}
    col = q(kw["column"]) if "column" in kw else None
    if kind == "expect_column_values_to_not_be_null":
        return f"count(*) FILTER (WHERE {col} IS NULL)"
    if kind == "expect_column_values_to_be_null":
        return f"count({col})"
    if kind == "expect_column_values_to_be_unique":
        return f"count({col}) - count(DISTINCT {col})"
    if kind in ("expect_compound_columns_to_be_unique", "expect_select_column_values_to_be_unique_within_record"):
        cols = ", ".join(q(c) for c in kw["column_list"])
        return f"count(*) - count(DISTINCT ({cols}))"
    if kind == "expect_column_values_to_be_between":
        conds = []
        if kw.get("min_value") is not None:
            conds.append(f"{col} {'<=' if kw.get('strict_min') else '<'} {_val(kw['min_value'])}")
        if kw.get("max_value") is not None:
            conds.append(f"{col} {'>=' if kw.get('strict_max') else '>'} {_val(kw['max_value'])}")
        return f"count(*) FILTER (WHERE {' OR '.join(conds) or 'FALSE'})"
    if kind == "expect_column_values_to_be_in_set":
        return f"count(*) FILTER (WHERE {col} IS NOT NULL AND {col} NOT IN ({_in_list(kw['value_set'])}))"
    if kind == "expect_column_values_to_not_be_in_set":
        return f"count(*) FILTER (WHERE {col} IN ({_in_list(kw['value_set'])}))"
    if kind == "expect_column_values_to_match_regex":
        return f"count(*) FILTER (WHERE {col} IS NOT NULL AND NOT regexp_matches({col}, {lit(kw['regex'])}))"
    if kind == "expect_column_values_to_not_match_regex":
        return f"count(*) FILTER (WHERE regexp_matches({col}, {lit(kw['regex'])}))"
    if kind == "expect_column_value_lengths_to_be_between":
        conds = []
        if kw.get("min_value") is not None:
            conds.append(f"length({col}) < {kw['min_value']}")
        if kw.get("max_value") is not None:
            conds.append(f"length({col}) > {kw['max_value']}")
        return f"count(*) FILTER (WHERE {' OR '.join(conds) or 'FALSE'})"
    if kind == "expect_column_value_lengths_to_equal":
        return f"count(*) FILTER (WHERE length({col}) <> {kw['value']})"
    if kind in ("expect_column_pair_values_a_to_be_greater_than_b",):
        op = ">=" if kw.get("or_equal") else ">"
        a, b = q(kw["column_A"]), q(kw["column_B"])
        return f"count(*) FILTER (WHERE {a} IS NOT NULL AND {b} IS NOT NULL AND NOT ({a} {op} {b}))"
    if kind in ("expect_table_row_count_to_be_between", "expect_table_row_count_to_equal"):
        return "count(*)"
    for stat in ("min", "max", "mean", "sum", "median"):
        if kind == f"expect_column_{stat}_to_be_between":
            fn = "avg" if stat == "mean" else stat
            return f"{fn}({col})"
    if kind == "expect_column_unique_value_count_to_be_between":
        return f"count(DISTINCT {col})"
    if kind == "expect_column_distinct_values_to_be_in_set":
        return f"count(DISTINCT {col}) FILTER (WHERE {col} NOT IN ({_in_list(kw['value_set'])}))"
    return None


def schema_expectation_ok(con: duckdb.DuckDBPyConnection, table: str, expectation: dict) -> bool | None:
    """Schema expectations (column existence, column lists, types) from information_schema."""
    kind = expectation["type"]
    kw = expectation.get("kwargs") or {}
    schema, name = table.split(".", 1)
    rows = con.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? "
                       "AND table_name = ? ORDER BY ordinal_position", [schema, name]).fetchall()
    names = [r[0] for r in rows]
    types = dict(rows)
    if kind == "expect_column_to_exist":
        return kw["column"] in names
    if kind == "expect_table_columns_to_match_ordered_list":
        return names == list(kw["column_list"])
    if kind == "expect_table_columns_to_match_set":
        return set(names) == set(kw["column_set"]) if kw.get("exact_match", True) else set(kw["column_set"]) <= set(names)
    if kind == "expect_table_column_count_to_equal":
        return len(names) == kw["value"]
    if kind == "expect_column_values_to_be_of_type":
        return str(types.get(kw["column"], "")).upper().startswith(str(kw["type_"]).upper())
    if kind == "expect_column_values_to_be_in_type_list":
        return any(str(types.get(kw["column"], "")).upper().startswith(str(t).upper()) for t in kw["type_list"])
    return None


def run_gates(con: duckdb.DuckDBPyConnection, expectations_dir: Path = EXPECTATIONS_DIR) -> dict:
    from dagster_project.lib.quality.validate import expand_suite, list_suites, load_suite_dict, scope_suite

    suites = expectations = untranslated = 0
    scanned_rows = 0
    failed: list[str] = []
    skipped: list[str] = []
    for suite_name in list_suites(None, expectations_dir):
        data = load_suite_dict(suite_name, expectations_dir)
        table = data["meta"]["table"]
        schema, name = table.split(".", 1)
        exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                             [schema, name]).fetchone()[0]
        if not exists:
            failed.append(f"{suite_name}: table {table} missing")
            continue
        data, _ = scope_suite(expand_suite(data, con), None)  # the full run validates whole tables
        suites += 1
        aggregates: list[tuple[int, str]] = []
        for index, expectation in enumerate(data["expectations"]):
            expectations += 1
            kind = expectation["type"]
            if kind == "unexpected_rows_expectation":
                query = expectation["kwargs"]["unexpected_rows_query"].replace("{batch}", table)
                query = query.replace("{{", "{").replace("}}", "}")
                n = con.execute(f"SELECT count(*) FROM ({query})").fetchone()[0]
                if n and expectation["meta"].get("severity") == "critical":
                    failed.append(f"{suite_name}#{index} {kind}: {n}")
                continue
            ok = schema_expectation_ok(con, table, expectation)
            if ok is not None:
                if not ok and expectation["meta"].get("severity") == "critical":
                    failed.append(f"{suite_name}#{index} {kind}")
                continue
            agg = expectation_aggregate(expectation)
            if agg is None:
                untranslated += 1
                skipped.append(f"{suite_name}#{index} {kind}")
                continue
            aggregates.append((index, agg))
        # One scan of the table for all its column expectations.
        select = ", ".join(["count(*)"] + [a for _, a in aggregates])
        values = con.execute(f"SELECT {select} FROM {table}").fetchone()
        total = int(values[0])
        scanned_rows += total
        for (index, _), value in zip(aggregates, values[1:]):
            expectation = data["expectations"][index]
            if not gate_passes(expectation, value, total) and expectation["meta"].get("severity") == "critical":
                failed.append(f"{suite_name}#{index} {expectation['type']}: {value}")
    return {"suites": suites, "expectations": expectations, "untranslated": skipped, "failed": failed,
            "rows_scanned": scanned_rows}


def gate_passes(expectation: dict, value, total: int) -> bool:
    """Pass/fail of an aggregate expectation from its SQL value (unexpected count or statistic)."""
    kind = expectation["type"]
    kw = expectation.get("kwargs") or {}
    if kind in ("expect_table_row_count_to_be_between", "expect_column_unique_value_count_to_be_between") \
            or re.match(r"expect_column_(min|max|mean|sum|median)_to_be_between", kind):
        low, high = kw.get("min_value"), kw.get("max_value")
        if value is None:
            return False
        return (low is None or value >= low) and (high is None or value <= high)
    if kind == "expect_table_row_count_to_equal":
        return value == kw["value"]
    mostly = kw.get("mostly", 1.0)
    if value is None:
        return True
    if mostly >= 1.0 or total == 0:
        return value == 0
    return (total - value) / total >= mostly


# ---------------------------------------------------------------------------------------------
# 4. Publish: copy the marts into a new file, swap it in
# ---------------------------------------------------------------------------------------------

def publish_marts(con: duckdb.DuckDBPyConnection, out_dir: Path, tables: list[str] | None) -> dict:
    """Copy the published marts into a new file (written with the pipeline's older storage
    version, so DuckDB 1.x BI drivers can read it), audit it read-only — row counts and a PII scan
    of every text column, as publish does — and rename it into place. ``tables`` are the published
    mart names (from the pipeline's published file); None means every table in ``marts``."""
    from dagster_project.lib.publish.publish import STORAGE_VERSION
    from dagster_project.lib.quality.validate import HASH_REGEX, ID_CARD_REGEX, PHONE_REGEX

    if tables is None:
        tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts' "
                                            "AND table_type = 'BASE TABLE' ORDER BY 1").fetchall()]
    candidate = out_dir / (FLOOR_PUBLISHED_NAME + ".candidate")
    target = out_dir / FLOOR_PUBLISHED_NAME
    candidate.unlink(missing_ok=True)
    counts: dict[str, int] = {}
    con.execute(f"ATTACH {lit(str(candidate))} AS floor_pub (STORAGE_VERSION {lit(STORAGE_VERSION)})")
    try:
        con.execute("CREATE SCHEMA floor_pub.marts")
        for table in tables:
            con.execute(f"CREATE TABLE floor_pub.marts.{q(table)} AS SELECT * FROM marts.{q(table)}")
            counts[table] = con.execute(f"SELECT count(*) FROM marts.{q(table)}").fetchone()[0]
    finally:
        con.execute("DETACH floor_pub")
    problems = []
    con.execute(f"ATTACH {lit(str(candidate))} AS floor_audit (READ_ONLY)")
    try:
        for table in tables:
            qualified = f"floor_audit.marts.{q(table)}"
            if con.execute(f"SELECT count(*) FROM {qualified}").fetchone()[0] != counts[table]:
                problems.append(f"{table}: row count differs")
            text_cols = [r[0] for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_catalog = 'floor_audit' "
                "AND table_schema = 'marts' AND table_name = ? AND data_type = 'VARCHAR'", [table]).fetchall()]
            if not text_cols:
                continue
            conds = [f"count(*) FILTER (WHERE (regexp_matches({q(c)}, {lit(PHONE_REGEX)}) OR regexp_matches({q(c)}, "
                     f"{lit(ID_CARD_REGEX)})) AND NOT regexp_full_match({q(c)}, {lit(HASH_REGEX)}))" for c in text_cols]
            hits = con.execute(f"SELECT {', '.join(conds)} FROM {qualified}").fetchone()
            problems += [f"{table}.{c}: {n} PII value(s)" for c, n in zip(text_cols, hits) if n]
    finally:
        con.execute("DETACH floor_audit")
    if problems:
        raise RuntimeError("floor publish audit failed: " + "; ".join(problems))
    os.replace(candidate, target)
    return {"tables": len(tables), "rows": sum(counts.values()), "file": str(target)}


# ---------------------------------------------------------------------------------------------
# Equality of the marts
# ---------------------------------------------------------------------------------------------

FLOAT_TYPES = ("FLOAT", "DOUBLE", "REAL")
SIGNIFICANT_DIGITS = 9
ABSOLUTE_TOLERANCE = 1e-9  # below this a float is zero (a sum of noise near 0 has no significant digits)


def comparable_expr(column: str, data_type: str) -> str:
    """A column as compared: floating-point values rounded to 9 significant digits (sums may be
    added in a different order) and |x| < 1e-9 taken as 0; everything else exact."""
    col = q(column)
    if data_type.upper() in FLOAT_TYPES:
        return (f"CASE WHEN {col} IS NULL OR isnan({col}) OR isinf({col}) THEN {col} "
                f"WHEN abs({col}) < {ABSOLUTE_TOLERANCE} THEN 0 "
                f"ELSE round({col}, {SIGNIFICANT_DIGITS} - CAST(ceil(log10(abs({col}))) AS INTEGER)) END AS {col}")
    return col


@dataclass
class TableComparison:
    table: str
    pipeline_rows: int
    floor_rows: int | None
    only_in_pipeline: int | None = None
    only_in_floor: int | None = None
    problem: str | None = None

    @property
    def equal(self) -> bool:
        return self.problem is None and self.pipeline_rows == self.floor_rows \
            and self.only_in_pipeline == 0 and self.only_in_floor == 0


# Lineage columns that say when a row was loaded or computed, not what it holds: two warehouses
# built from the same files at different times (or one incrementally) differ there and nowhere else.
LOAD_TIME_COLUMNS = frozenset({"_ingested_at", "_source_ingested_at", "_computed_as_of", "_run_id",
                               *RECORDING_TIME_COLUMNS})


def compare_marts(pipeline_db: Path, floor_db: Path, schema: str = "marts",
                  tables: list[str] | None = None) -> list[TableComparison]:
    """Every table of ``schema`` in the pipeline's file (or the given ones) against the floor's:
    same columns, same row count, same multiset of rows (EXCEPT ALL both ways), load-time lineage
    columns left out."""
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH {lit(str(pipeline_db))} AS p (READ_ONLY)")
        con.execute(f"ATTACH {lit(str(floor_db))} AS f (READ_ONLY)")
        out = []

        def columns(db: str, table: str) -> list[tuple[str, str]]:
            return [(c, t) for c, t in con.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_catalog = ? "
                "AND table_schema = ? AND table_name = ? ORDER BY ordinal_position", [db, schema, table]).fetchall()
                    if c not in LOAD_TIME_COLUMNS]

        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'p' AND table_schema = ? "
            "AND table_type = 'BASE TABLE' ORDER BY 1", [schema]).fetchall()] if tables is None else list(tables)
        for table in tables:
            p_rows = con.execute(f"SELECT count(*) FROM p.{schema}.{q(table)}").fetchone()[0]
            p_cols, f_cols = columns("p", table), columns("f", table)
            if not f_cols:
                out.append(TableComparison(table, p_rows, None, problem="missing in the floor"))
                continue
            f_rows = con.execute(f"SELECT count(*) FROM f.{schema}.{q(table)}").fetchone()[0]
            if [c for c, _ in p_cols] != [c for c, _ in f_cols]:
                out.append(TableComparison(table, p_rows, f_rows, problem=f"columns differ: {p_cols} vs {f_cols}"))
                continue
            types = {c: t for c, t in p_cols}
            for c, t in f_cols:  # a float on either side is compared with the tolerance
                if t.upper() in FLOAT_TYPES:
                    types[c] = t
            proj = ", ".join(comparable_expr(c, types[c]) for c, _ in p_cols)
            con.execute(f"CREATE OR REPLACE TEMP TABLE only_p AS SELECT {proj} FROM p.{schema}.{q(table)} EXCEPT ALL "
                        f"SELECT {proj} FROM f.{schema}.{q(table)}")
            con.execute(f"CREATE OR REPLACE TEMP TABLE only_f AS SELECT {proj} FROM f.{schema}.{q(table)} EXCEPT ALL "
                        f"SELECT {proj} FROM p.{schema}.{q(table)}")
            floats = [c for c, _ in p_cols if types[c].upper() in FLOAT_TYPES]
            only_p = unmatched_rows(con, "only_p", "only_f", [c for c, _ in p_cols], floats)
            only_f = unmatched_rows(con, "only_f", "only_p", [c for c, _ in p_cols], floats)
            out.append(TableComparison(table, p_rows, f_rows, only_p, only_f))
        return out
    finally:
        con.close()


def unmatched_rows(con: duckdb.DuckDBPyConnection, left: str, right: str, columns: list[str], floats: list[str]) -> int:
    """Rows of ``left`` (the rows one side has and the other has not, floats already rounded) that
    have no partner in ``right`` with equal non-float columns and float columns within a relative
    2e-8 (one unit of the 9th digit): rounding to 9 significant digits can still split two nearly
    equal values at a rounding boundary, and this second pass forgives exactly that."""
    n = con.execute(f"SELECT count(*) FROM {left}").fetchone()[0]
    if n == 0 or not floats:
        return n
    conds = [f"l.{q(c)} IS NOT DISTINCT FROM r.{q(c)}" for c in columns if c not in floats]
    conds += [f"(l.{q(c)} IS NOT DISTINCT FROM r.{q(c)} OR abs(l.{q(c)} - r.{q(c)}) <= "
              f"2e-8 * greatest(abs(l.{q(c)}), abs(r.{q(c)})) + {ABSOLUTE_TOLERANCE})" for c in floats]
    return con.execute(f"SELECT count(*) FROM {left} AS l WHERE NOT EXISTS (SELECT 1 FROM {right} AS r "
                       f"WHERE {' AND '.join(conds)})").fetchone()[0]


def differing_columns(pipeline_db: Path, floor_db: Path, table: str, schema: str = "marts") -> list[str]:
    """Diagnosis for a failed comparison: the columns whose value multisets differ."""
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH {lit(str(pipeline_db))} AS p (READ_ONLY)")
        con.execute(f"ATTACH {lit(str(floor_db))} AS f (READ_ONLY)")
        cols = con.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_catalog = 'p' "
                           "AND table_schema = ? AND table_name = ? ORDER BY ordinal_position", [schema, table]).fetchall()
        out = []
        for c, t in cols:
            e = comparable_expr(c, t)
            n = con.execute(f"SELECT count(*) FROM (SELECT {e} FROM p.{schema}.{q(table)} EXCEPT ALL "
                            f"SELECT {e} FROM f.{schema}.{q(table)})").fetchone()[0]
            if n:
                out.append(f"{c} ({n} values)")
        return out
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------
# The whole floor
# ---------------------------------------------------------------------------------------------

def run_floor(landing_dir: Path, out_dir: Path, manifest_path: Path, *, published_tables: list[str] | None = None,
              project_dir: Path = REPO_ROOT / "dbt", expectations_dir: Path = EXPECTATIONS_DIR,
              threads: int | None = None, only_files: set[str] | None = None) -> dict:
    """The floor from scratch, or with ``only_files`` the one-day floor: ``out_dir`` already holds
    the work file a full floor left, only those landing files load, the models run the manifest's
    incremental SQL (compiled against that file), and the tests, gates and publish run as in full."""
    from dagster_project.lib.ingest import CONTRACTS

    out_dir.mkdir(parents=True, exist_ok=True)
    db = out_dir / FLOOR_DB_NAME
    incremental = only_files is not None
    if incremental and not db.exists():
        raise FileNotFoundError(f"{db}: the one-day floor starts from a full floor's work file")
    for stale in ([] if incremental else [db]) + [out_dir / (FLOOR_DB_NAME + ".wal")]:
        stale.unlink(missing_ok=True)
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    clock = StageClock()
    result: dict = {"db": str(db)}
    t0 = time.perf_counter()
    con = duckdb.connect(str(db))
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS raw")
        with tempfile.TemporaryDirectory(prefix="floor-transcode-", dir=out_dir) as scratch:
            for source, contract in CONTRACTS.items():
                with clock.stage(f"ingest:{source}") as info:
                    counts = ingest_source(con, contract, landing_dir, Path(scratch), only_files)
                    info["rows"] = counts["landed"]
                    info["detail"] = counts
        with clock.stage("dbt") as info:
            info["detail"] = run_dbt_sql(con, manifest, project_dir, incremental=incremental)
            info["rows"] = con.execute("SELECT sum(estimated_size) FROM duckdb_tables() WHERE schema_name = 'raw'").fetchone()[0]
            # The one-day run leaves out the tests on the unchanged seeds alone, as the pipeline's does.
            tests = run_dbt_tests(con, manifest, skip=frozenset(t for ts in seed_tests(manifest).values() for t in ts)
                                  if incremental else frozenset())
            info["detail"].update(tests)
            # the marts computed in Python on the dbt build, by the same functions as the pipeline
            info["detail"]["analysis_rows"] = sum(analysis.build(con, out_dir)["rows"] for analysis in ANALYSES)
            # the alert conditions the pipeline finds in the marts before it publishes them
            info["detail"]["alerts"] = len(record_alerts_in(con)[0])
        with clock.stage("gates") as info:
            gates = run_gates(con, expectations_dir)
            info["rows"] = gates["rows_scanned"]
            info["detail"] = gates
        con.execute("CHECKPOINT")
        with clock.stage("publish") as info:
            pub = publish_marts(con, out_dir, published_tables)
            info["rows"] = pub["rows"]
            info["detail"] = pub
    finally:
        con.close()
    result["seconds"] = time.perf_counter() - t0
    result["stages"] = [asdict(s) for s in clock.stages]
    result["published_db"] = str(out_dir / FLOOR_PUBLISHED_NAME)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.floor", description=__doc__.splitlines()[0])
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--result", type=Path, required=True)
    parser.add_argument("--tables", default=None, help="comma-separated published mart names")
    parser.add_argument("--only-files", type=Path, default=None,
                        help="the one-day floor: a file listing the landing files to load (one relative path a "
                             "line) into the work file a full floor left in --out")
    args = parser.parse_args(argv)
    tables = args.tables.split(",") if args.tables else None
    only = (set(args.only_files.read_text(encoding="utf-8").split()) if args.only_files else None)
    result = run_floor(args.landing.resolve(), args.out.resolve(), args.manifest.resolve(), published_tables=tables,
                       only_files=only)
    args.result.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO_ROOT))
    raise SystemExit(main())
