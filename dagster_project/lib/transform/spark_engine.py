"""dbt on Apache Spark for the same pipeline (``CSWH_ENGINE=spark``; docs/spark.md#one-switch).

Ingest still parses every landing file with the source modules and loads ``raw.*`` into the work
DuckDB file, with the same ledger, quarantine and raw gates: DuckDB is the parser. Around the dbt
build this module does the two hand-overs:

- before it, ``mirror_sources_to_lake`` keeps every dbt source (``raw.<table>``) in the lake
  folder as one Parquet file per month of ingest partitions, which the Spark models register as
  external tables (``dbt/macros/lake.sql``): only the months whose rows a run loaded, replaced or
  removed are written, each file renamed into place whole, the folder's state file last;
- after a successful build, ``load_spark_tables`` reads every table dbt built on Spark (seeds,
  intermediate and mart tables: Parquet folders of Spark's warehouse) back into the work file
  under the same names, cast to the types their contracts declare, in one transaction. The mart
  gates, the analyses, the alerts and publish then run unchanged on what Spark built, and the
  published file is the same audited DuckDB file BI tools read;
- then ``build_duckdb_views`` creates the project's views (staging) in the work file with dbt's
  DuckDB target, over the same raw tables: the gates reconcile every mart with staging, so the
  marts Spark built are checked against a second engine's reading of the same rows.

What this does not do (docs/spark.md#what-was-tested): the ingest steps do not write the lake
themselves (the dbt step brings it up to date from the work file, partition by partition), and
the Great Expectations suites validate the marts as read back into DuckDB, not through GX's Spark
datasource.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path
from typing import Any, Mapping

from dagster_project.lib.sql import quote_ident, sql_literal
from dagster_project.lib.transform.dbt_project import run_dbt, seed_partial_parse
from dagster_project.settings import Settings, connect_work_db

# Relations dbt materializes as tables on Spark (views hold no files; ephemeral models no relation).
TABLE_MATERIALIZATIONS = ("table", "incremental", "seed")


class SparkEngineError(RuntimeError):
    """The Spark engine cannot run here (a missing piece, a table dbt did not write)."""


def missing_spark_pieces() -> list[str]:
    """What a local Spark session (dbt-spark's session method) needs that this machine lacks."""
    missing = []
    if importlib.util.find_spec("pyspark") is None or importlib.util.find_spec("dbt.adapters.spark") is None:
        missing.append("the spark extra (pip install -e '.[spark]', or make spark-install)")
    if shutil.which("java") is None:
        missing.append("a Java runtime (make spark-install installs Debian's default-jre-headless)")
    return missing


def require_spark() -> None:
    missing = missing_spark_pieces()
    if missing:
        raise SparkEngineError("CSWH_ENGINE=spark needs " + " and ".join(missing))


def source_tables(manifest: Mapping[str, Any]) -> list[str]:
    """The raw tables the dbt project reads (its sources), by identifier."""
    return sorted({s.get("identifier") or s["name"] for s in manifest.get("sources", {}).values()})


# The lake's record of what each table folder holds (a dot file: Spark's file listing skips it).
LAKE_STATE_FILE = ".cswh-partitions.json"
# The ingest partition of every raw row (its landing day or month), and the columns a load stamps on it.
PARTITION_COLUMN = "_partition"
# One lake file per month of partitions: day files would be small (a few hundred rows a day at the
# sample scales: 2,707 files for the tiny data set, which made the Spark build 149 s against 113 s), and a
# re-sent day rewrites only its month.
LAKE_FILE_KEY_SQL = f"substr({PARTITION_COLUMN}, 1, 7)"
LOAD_STAMP_COLUMNS = frozenset({PARTITION_COLUMN, "_run_id", "_ingested_at", "_source_file", "_source_line"})
LOAD_STAMP_SQL = ("count(*)::VARCHAR || '|' || coalesce(max(_run_id), '') || '|' || coalesce(max(_ingested_at)::VARCHAR, '')"
                  " || '|' || coalesce(bit_xor(hash(_source_file, _source_line))::VARCHAR, '')")


def _partition_file(partition: str) -> str:
    """The Parquet file of one month of ingest partitions (``2025-06``: digits and a dash)."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in partition)
    return f"part-{safe}.parquet"


def _read_state(folder: Path) -> dict:
    try:
        return json.loads((folder / LAKE_STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _copy_to_parquet(con, query: str, path: Path) -> None:
    """``query`` as one Parquet file, written beside ``path`` and renamed over it: a reader (or a
    killed run) sees the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    con.execute(f"COPY ({query}) TO {sql_literal(str(tmp))} (FORMAT parquet)")
    os.replace(tmp, path)


def mirror_table(con, table: str, folder: Path) -> dict[str, int]:
    """``raw.<table>`` as one Parquet file per month of ingest partitions under ``folder``, writing
    only the months whose load stamp (rows, last run, last ingest time, a hash of the rows' source
    positions) changed since the last mirror: a re-sent day replaces its month's file, a month that
    is gone loses it, the rest stay as they are. A changed column list rewrites every month. An
    empty table keeps one file without rows, so that Spark still finds its schema; a table whose
    rows carry no load stamp (the ingest ledger itself, small) is one file, written every time. The state file
    is written last, so an interrupted mirror is redone the next time. Returns what it did
    (``written``, ``removed``, ``kept``, ``rows``)."""
    folder.mkdir(parents=True, exist_ok=True)
    relation = f"raw.{quote_ident(table)}"
    columns = [f"{name} {data_type}" for name, data_type in con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'raw' AND table_name = ? "
        "ORDER BY ordinal_position", [table]).fetchall()]
    if LOAD_STAMP_COLUMNS <= {c.split(" ")[0] for c in columns}:
        key_sql = LAKE_FILE_KEY_SQL
        months = {str(month): (int(rows), stamp) for month, rows, stamp in con.execute(
            f"SELECT {key_sql}, count(*), {LOAD_STAMP_SQL} FROM {relation} GROUP BY 1").fetchall()}
    else:
        key_sql = "'all'"
        months = {"all": (int(con.execute(f"SELECT count(*) FROM {relation}").fetchone()[0]), None)}
    state = _read_state(folder)
    previous = state.get("partitions", {}) if state.get("columns") == columns else {}
    wanted: dict[str, str] = {}  # file name -> stamp
    written = 0
    for month, (_, stamp) in sorted(months.items()) or [("empty", (0, "empty"))]:
        name = _partition_file(month)
        wanted[name] = stamp
        if stamp is None or previous.get(name) != stamp or not (folder / name).exists():
            _copy_to_parquet(con, f"SELECT * FROM {relation} WHERE {key_sql} = {sql_literal(month)}",
                             folder / name)
            written += 1
    removed = 0
    for path in folder.glob("*.parquet"):
        if path.name not in wanted:
            path.unlink()
            removed += 1
    _write_atomically(folder / LAKE_STATE_FILE, json.dumps({"columns": columns, "partitions": wanted}, indent=0))
    return {"written": written, "removed": removed, "kept": len(wanted) - written,
            "rows": sum(rows for rows, _ in months.values())}


def mirror_sources_to_lake(settings: Settings, manifest: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """Every dbt source of the work file in the lake, ``<lake>/<table>/part-<month>.parquet``
    (``mirror_table``); what was done per table."""
    lake = settings.lake_dir
    lake.mkdir(parents=True, exist_ok=True)
    done: dict[str, dict[str, int]] = {}
    con = connect_work_db(settings.work_db, read_only=True)
    try:
        present = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw'").fetchall()}
        for table in source_tables(manifest):
            if table not in present:
                raise SparkEngineError(f"raw.{table} is not in the work file: ingest has not loaded it")
            done[table] = mirror_table(con, table, lake / table)
    finally:
        con.close()
    return done


def spark_table_folder(settings: Settings, schema: str, table: str) -> Path:
    """Where dbt-spark's session catalog keeps a table's Parquet files."""
    return settings.spark_dir / "warehouse" / f"{schema}.db" / table


def built_tables(manifest: Mapping[str, Any]) -> list[dict]:
    """The project's seeds and table models (what Spark writes files for), in manifest order."""
    return [n for n in manifest.get("nodes", {}).values()
            if n.get("package_name") == "cs_warehouse"
            and (n["resource_type"] == "seed"
                 or (n["resource_type"] == "model" and n["config"].get("materialized") in TABLE_MATERIALIZATIONS))]


def _select_list(node: Mapping[str, Any], parquet_columns: list[str]) -> str:
    """The Parquet columns in their order, each cast to the type the node's yml declares."""
    declared = {name.lower(): (col.get("data_type") or "").strip() for name, col in node.get("columns", {}).items()}
    parts = []
    for column in parquet_columns:
        data_type = declared.get(column.lower())
        parts.append(f"CAST({quote_ident(column)} AS {data_type}) AS {quote_ident(column)}" if data_type else quote_ident(column))
    return ", ".join(parts)


def load_spark_tables(settings: Settings, manifest: Mapping[str, Any]) -> list[str]:
    """Every seed and table model Spark built, into the work file as ``<schema>.<name>``; the
    relations loaded. One transaction: the work file holds all of this build or none of it. (Their
    rows are counted once, for the materializations, by the dbt asset.)"""
    nodes = built_tables(manifest)
    folders = {}
    for node in nodes:
        folder = spark_table_folder(settings, node["schema"], node.get("alias") or node["name"])
        if not any(folder.glob("*.parquet")):
            raise SparkEngineError(f"{node['schema']}.{node['name']}: dbt reported it built, but {folder} holds no Parquet files")
        folders[node["unique_id"]] = folder
    loaded = []
    con = connect_work_db(settings.work_db)
    try:
        views = set(con.execute("SELECT table_schema, table_name FROM information_schema.tables "
                                "WHERE table_type = 'VIEW'").fetchall())
        con.execute("BEGIN")
        for node in nodes:
            schema, name = node["schema"], node.get("alias") or node["name"]
            scan = f"read_parquet({sql_literal(str(folders[node['unique_id']] / '*.parquet'))})"
            columns = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()]
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
            if (schema, name) in views:  # a relation that was a view in an earlier build
                con.execute(f"DROP VIEW {quote_ident(schema)}.{quote_ident(name)}")
            con.execute(f"CREATE OR REPLACE TABLE {quote_ident(schema)}.{quote_ident(name)} AS "
                        f"SELECT {_select_list(node, columns)} FROM {scan}")
            loaded.append(f"{schema}.{name}")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.close()
    return loaded


def build_duckdb_views(settings: Settings) -> dict:
    """The project's views (staging, the time spine) in the work file, built by dbt on DuckDB; its
    artefacts go to their own target folder so the Spark build's stay the record of the build."""
    on_duckdb = settings.with_overrides(engine="duckdb")
    target = settings.warehouse_dir / "dbt_target_duckdb_views"
    target.mkdir(parents=True, exist_ok=True)
    # The project's DuckDB parse first: run_dbt would otherwise start from the Spark build's parse,
    # which dbt discards for another target (a full re-parse, about 10 s).
    seed_partial_parse(on_duckdb, target)
    return run_dbt(on_duckdb, ["run", "--select", "config.materialized:view"], target_dir=target)
