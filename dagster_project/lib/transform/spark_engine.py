"""dbt on Apache Spark for the same pipeline (``CSWH_ENGINE=spark``; docs/spark.md#one-switch).

Ingest still parses every landing file with the source modules and loads ``raw.*`` into the work
DuckDB file, with the same ledger, quarantine and raw gates: DuckDB is the parser. Around the dbt
build this module does the two hand-overs:

- before it, ``mirror_sources_to_lake`` writes every dbt source (``raw.<table>``) as a Parquet
  folder under the lake folder, which the Spark models register as external tables
  (``dbt/macros/lake.sql``); a folder is written beside the old one and swapped in, so a killed
  export leaves the previous folder whole;
- after a successful build, ``load_spark_tables`` reads every table dbt built on Spark (seeds,
  intermediate and mart tables: Parquet folders of Spark's warehouse) back into the work file
  under the same names, cast to the types their contracts declare, in one transaction. The mart
  gates, the analyses, the alerts and publish then run unchanged on what Spark built, and the
  published file is the same audited DuckDB file BI tools read;
- then ``build_duckdb_views`` creates the project's views (staging) in the work file with dbt's
  DuckDB target, over the same raw tables: the gates reconcile every mart with staging, so the
  marts Spark built are checked against a second engine's reading of the same rows.

What this does not do (docs/spark.md#what-was-tested): ingest does not write lake partitions
itself (each run mirrors the whole raw layer, about one Parquet write of the raw tables), and the
Great Expectations suites validate the marts as read back into DuckDB, not through GX's Spark
datasource.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path
from typing import Any, Mapping

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


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def source_tables(manifest: Mapping[str, Any]) -> list[str]:
    """The raw tables the dbt project reads (its sources), by identifier."""
    return sorted({s.get("identifier") or s["name"] for s in manifest.get("sources", {}).values()})


def mirror_sources_to_lake(settings: Settings, manifest: Mapping[str, Any]) -> dict[str, int]:
    """Every source table of the work file as ``<lake>/<table>/part-0.parquet``; rows per table."""
    lake = settings.lake_dir
    lake.mkdir(parents=True, exist_ok=True)
    rows: dict[str, int] = {}
    con = connect_work_db(settings.work_db, read_only=True)
    try:
        present = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw'").fetchall()}
        for table in source_tables(manifest):
            if table not in present:
                raise SparkEngineError(f"raw.{table} is not in the work file: ingest has not loaded it")
            final, fresh, stale = lake / table, lake / f".{table}.new-{os.getpid()}", lake / f".{table}.old-{os.getpid()}"
            shutil.rmtree(fresh, ignore_errors=True)
            fresh.mkdir()
            target = _sql_string(str(fresh / "part-0.parquet"))
            con.execute(f"COPY (SELECT * FROM raw.{_quote(table)}) TO {target} (FORMAT parquet)")
            rows[table] = int(con.execute(f"SELECT count(*) FROM raw.{_quote(table)}").fetchone()[0])
            if final.exists():
                final.rename(stale)
            fresh.rename(final)
            shutil.rmtree(stale, ignore_errors=True)
    finally:
        con.close()
    return rows


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
        parts.append(f"CAST({_quote(column)} AS {data_type}) AS {_quote(column)}" if data_type else _quote(column))
    return ", ".join(parts)


def load_spark_tables(settings: Settings, manifest: Mapping[str, Any]) -> dict[str, int]:
    """Every seed and table model Spark built, into the work file as ``<schema>.<name>``; rows per
    relation. One transaction: the work file holds all of this build or none of it."""
    nodes = built_tables(manifest)
    folders = {}
    for node in nodes:
        folder = spark_table_folder(settings, node["schema"], node.get("alias") or node["name"])
        if not any(folder.glob("*.parquet")):
            raise SparkEngineError(f"{node['schema']}.{node['name']}: dbt reported it built, but {folder} holds no Parquet files")
        folders[node["unique_id"]] = folder
    rows: dict[str, int] = {}
    con = connect_work_db(settings.work_db)
    try:
        views = set(con.execute("SELECT table_schema, table_name FROM information_schema.tables "
                                "WHERE table_type = 'VIEW'").fetchall())
        con.execute("BEGIN")
        for node in nodes:
            schema, name = node["schema"], node.get("alias") or node["name"]
            scan = f"read_parquet({_sql_string(str(folders[node['unique_id']] / '*.parquet'))})"
            columns = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()]
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(schema)}")
            if (schema, name) in views:  # a relation that was a view in an earlier build
                con.execute(f"DROP VIEW {_quote(schema)}.{_quote(name)}")
            con.execute(f"CREATE OR REPLACE TABLE {_quote(schema)}.{_quote(name)} AS "
                        f"SELECT {_select_list(node, columns)} FROM {scan}")
            rows[f"{schema}.{name}"] = int(con.execute(f"SELECT count(*) FROM {_quote(schema)}.{_quote(name)}").fetchone()[0])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.close()
    return rows


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
