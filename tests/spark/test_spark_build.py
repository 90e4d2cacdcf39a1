"""The whole pipeline on Apache Spark publishes the same marts as on DuckDB (docs/spark.md).

One ``cs-warehouse run`` with ``CSWH_ENGINE=spark`` over the session's tiny landing files, into a
warehouse of its own: ingest and the raw gates on DuckDB, the raw tables mirrored as Parquet into
the lake, ``dbt build`` on Spark (dbt-spark in session mode, ``local[2]``, a Derby metastore and
Parquet tables under the warehouse) with every data test as a blocking check, the built tables read
back into the work file, the mart gates, publish. Then:

- every published mart equals the DuckDB run's (tests/conftest.py, the same landing files): exact
  for integers, strings, dates and booleans, within 1e-9 relative for floats, leaving out only the
  columns that record when a run wrote a row;
- every mart Spark wrote (its Parquet folder, read by DuckDB: no Spark session stays open in the test
  process) equals the DuckDB build's, so the published figures really came from Spark;
- the contract constraints, which Spark does not enforce, hold on the rows Spark wrote;
- the salted keys equal DuckDB's and the salt is stored in no file of the warehouse.

dbt's unit tests on Spark run with CSWH_TEST_SPARK_FULL=1 (``make test-spark-full``). Skipped only
where pyspark or a Java runtime is missing (``make spark-install`` installs both); in CI a missing
piece fails the test.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import duckdb
import pytest

from dagster_project.lib.report.alerts import RECORDING_TIME_COLUMNS
from dagster_project.lib.sql import quote_ident
from dagster_project.lib.transform.dbt_project import dbt_target_dir, run_dbt
from dagster_project.lib.transform.spark_engine import missing_spark_pieces, spark_table_folder
from tests.conftest import TEST_SALT, new_settings, require_tools, run_pipeline

pytestmark = pytest.mark.slow

# On two cores dbt's 32 unit tests take 2-4 more minutes on Spark: they run with
# CSWH_TEST_SPARK_FULL=1 (`make test-spark-full`); every `make test` runs the pipeline on Spark.
FULL = os.environ.get("CSWH_TEST_SPARK_FULL") == "1"

RELATIVE_TOLERANCE = 1e-9
# Below this a float is zero: a difference of summation order around 0 has no relative size.
ABSOLUTE_TOLERANCE = 1e-12
FLOAT_TYPES = ("DOUBLE", "FLOAT", "REAL")


@pytest.fixture(scope="module")
def spark_run(built_settings, tmp_path_factory):
    """One pipeline run with CSWH_ENGINE=spark over the session's landing files (read only)."""
    require_tools(missing_spark_pieces())
    root = tmp_path_factory.mktemp("spark_engine")
    settings = new_settings(root, landing=built_settings.landing_dir).with_overrides(
        engine="spark", spark_options={"CSWH_SPARK_MASTER": "local[2]"})
    started = time.monotonic()
    returncode = run_pipeline(settings)
    seconds = time.monotonic() - started
    target = dbt_target_dir(settings)
    results_file = target / "run_results.json"
    results = json.loads(results_file.read_text(encoding="utf-8")) if results_file.exists() else {"results": []}
    return {"settings": settings, "root": root, "returncode": returncode, "seconds": seconds,
            "results": results, "target": target}


def _manifest(run) -> dict:
    return json.loads((run["target"] / "manifest.json").read_text(encoding="utf-8"))


def _spark_table(run, schema: str, table: str) -> Path:
    return spark_table_folder(run["settings"], schema, table)


def _summary(results: dict) -> tuple[dict[str, int], list[str]]:
    counts: dict[str, int] = {}
    failed = []
    for result in results["results"]:
        counts[result["status"]] = counts.get(result["status"], 0) + 1
        if result["status"] not in ("success", "pass"):
            failed.append(f"{result['unique_id']}: {result['status']} {(result.get('message') or '')[:400]}")
    return counts, failed


def test_the_pipeline_on_spark_builds_every_node_and_publishes(spark_run):
    run = spark_run
    counts, failed = _summary(run["results"])
    assert run["returncode"] == 0, f"CSWH_ENGINE=spark cs-warehouse run: exit {run['returncode']}, dbt {counts}\n" + "\n".join(failed[:30])
    assert not failed, "\n".join(failed[:30])
    assert _manifest(run)["metadata"]["adapter_type"] == "spark"
    kinds = {r["unique_id"].split(".")[0] for r in run["results"]["results"]}
    assert {"seed", "model", "test"} <= kinds, kinds
    assert run["settings"].published_db.exists()
    print(f"pipeline on spark: dbt {counts}, {run['seconds']:.0f} s")


@pytest.mark.skipif(not FULL, reason="dbt unit tests on Spark: CSWH_TEST_SPARK_FULL=1 (make test-spark-full)")
def test_spark_unit_tests_pass(spark_run):
    settings = spark_run["settings"]
    units = run_dbt(settings, ["test", "--select", "test_type:unit"], target_dir=spark_run["root"] / "unit_target")
    assert units["statuses"].get("pass", 0) >= 20, units["statuses"]
    print(f"spark unit tests: {units['statuses']} in {units['elapsed_seconds']:.0f} s")


def _difference(name, names, floats, a, b, worst):
    """What differs between two ordered row lists of one table (None when they are equal), and the
    largest relative float difference seen."""
    if len(a) != len(b):
        return f"{name}: {len(b)} rows from Spark, {len(a)} from DuckDB", worst
    bad = []
    for row_a, row_b in zip(a, b):
        for col, x, y in zip(names, row_a, row_b):
            if col in floats and x is not None and y is not None:
                if math.isnan(x) and math.isnan(y):
                    continue
                diff = abs(x - y)
                scale = max(abs(x), abs(y))
                if diff > ABSOLUTE_TOLERANCE:
                    worst = max(worst, diff / scale)
                if diff > RELATIVE_TOLERANCE * scale + ABSOLUTE_TOLERANCE:
                    bad.append(f"{col}: {x!r} vs {y!r}")
            elif x != y:
                bad.append(f"{col}: duckdb {x!r} vs spark {y!r}")
        if len(bad) > 5:
            break
    return (f"{name}: " + "; ".join(bad[:6]) if bad else None), worst


def test_every_published_mart_equals_the_duckdb_runs(spark_run, built_settings):
    assert spark_run["returncode"] == 0
    con = duckdb.connect()
    con.execute(f"ATTACH '{built_settings.published_db}' AS d (READ_ONLY)")
    con.execute(f"ATTACH '{spark_run['settings'].published_db}' AS s (READ_ONLY)")
    tables = [r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'd' AND table_schema = 'marts' "
        "ORDER BY 1").fetchall()]
    assert len(tables) >= 20, tables
    problems, worst = [], 0.0
    for table in tables:
        def columns(catalog):
            return con.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_catalog = ? "
                               "AND table_schema = 'marts' AND table_name = ? ORDER BY ordinal_position",
                               [catalog, table]).fetchall()
        cols = columns("d")
        if columns("s") != cols:
            problems.append(f"{table}: columns differ: {columns('s')} vs {cols}")
            continue
        names = [c for c, _ in cols if c not in RECORDING_TIME_COLUMNS]
        floats = [c for c, t in cols if t.upper() in FLOAT_TYPES]
        order = ", ".join([quote_ident(c) for c in names if c not in floats] + [quote_ident(c) for c in names if c in floats])
        select = ", ".join(quote_ident(c) for c in names)
        a = con.execute(f"SELECT {select} FROM d.marts.{quote_ident(table)} ORDER BY {order}").fetchall()
        b = con.execute(f"SELECT {select} FROM s.marts.{quote_ident(table)} ORDER BY {order}").fetchall()
        problem, worst = _difference(table, names, floats, a, b, worst)
        problems += [problem] if problem else []
    con.close()
    print(f"{len(tables) - len(problems)} of {len(tables)} published marts equal; largest relative float difference {worst:.2e}")
    assert not problems, "\n".join(problems)


def _mart_models(manifest: dict) -> list[dict]:
    return sorted((n for n in manifest["nodes"].values() if n["resource_type"] == "model"
                   and n["schema"] == "marts" and n["config"]["materialized"] == "table"),
                  key=lambda n: n["name"])


def _comparable(con, duck_table: str, spark_folder: Path) -> tuple[list[str], list[str], str, str]:
    """(columns, float columns, DuckDB query, Spark query): both sides cast to the DuckDB build's
    column types, ordered by every non-float column first, so the rows pair up one to one."""
    cols = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_catalog = 'd' "
        "AND table_schema = 'marts' AND table_name = ? ORDER BY ordinal_position", [duck_table]).fetchall()
    names = [c for c, _ in cols]
    floats = [c for c, t in cols if t.upper() in FLOAT_TYPES]
    order = ", ".join([quote_ident(c) for c in names if c not in floats] + [quote_ident(c) for c in floats])
    duck = f"SELECT {', '.join(quote_ident(c) for c in names)} FROM d.marts.{quote_ident(duck_table)} ORDER BY {order}"
    spark_cols = ", ".join(f"CAST({quote_ident(c)} AS {t}) AS {quote_ident(c)}" for c, t in cols)
    spark = (f"SELECT {spark_cols} FROM read_parquet('{spark_folder}/*.parquet') ORDER BY {order}")
    return names, floats, duck, spark


def test_every_mart_spark_wrote_equals_the_duckdb_build(spark_run, built_settings):
    assert spark_run["returncode"] == 0
    con = duckdb.connect()
    con.execute(f"ATTACH '{built_settings.work_db}' AS d (READ_ONLY)")
    problems, equal, worst = [], 0, 0.0
    marts = _mart_models(_manifest(spark_run))
    assert len(marts) >= 20, [m["name"] for m in marts]
    for node in marts:
        name = node["name"]
        folder = _spark_table(spark_run, "marts", node["alias"])
        if not list(folder.glob("*.parquet")):
            problems.append(f"{name}: no Parquet files in {folder}")
            continue
        spark_names = [r[0] for r in con.execute(
            f"DESCRIBE SELECT * FROM read_parquet('{folder}/*.parquet')").fetchall()]
        names, floats, duck_sql, spark_sql = _comparable(con, name, folder)
        if spark_names != names:
            problems.append(f"{name}: columns differ: spark {spark_names} vs duckdb {names}")
            continue
        problem, worst = _difference(name, names, floats, con.execute(duck_sql).fetchall(),
                                     con.execute(spark_sql).fetchall(), worst)
        problems += [problem] if problem else []
        equal += problem is None
    con.close()
    print(f"{equal} of {len(marts)} marts equal; largest relative float difference {worst:.2e}")
    assert not problems, "\n".join(problems)


def _constraints(node: dict) -> list[tuple[str, list[str]]]:
    """(type, columns) of every not_null / unique / primary_key constraint of a contracted model."""
    out = []
    for column in node["columns"].values():
        for constraint in column.get("constraints") or []:
            if constraint["type"] in ("not_null", "unique", "primary_key"):
                out.append((constraint["type"], [column["name"]]))
    for constraint in node.get("constraints") or []:
        if constraint["type"] in ("not_null", "unique", "primary_key"):
            out.append((constraint["type"], list(constraint.get("columns") or [])))
    return out


def test_contract_constraints_hold_on_spark(spark_run):
    """dbt-spark does not enforce contract constraints on Parquet tables: every not_null, unique
    and primary-key constraint of every contracted model is checked on the rows Spark wrote."""
    assert spark_run["returncode"] == 0
    contracted = [n for n in _manifest(spark_run)["nodes"].values()
                  if n["resource_type"] == "model" and (n["config"].get("contract") or {}).get("enforced")]
    assert contracted
    con = duckdb.connect()
    violations, checked = [], 0
    for node in contracted:
        relation = f"read_parquet('{_spark_table(spark_run, node['schema'], node['alias'])}/*.parquet')"
        for kind, columns in _constraints(node):
            cols = ", ".join(quote_ident(c) for c in columns)
            checked += 1
            if kind in ("not_null", "primary_key"):
                nulls = con.execute(f"SELECT count(*) FROM {relation} WHERE "
                                    + " OR ".join(f"{quote_ident(c)} IS NULL" for c in columns)).fetchone()[0]
                if nulls:
                    violations.append(f"{node['name']}.{cols}: {kind}, {nulls} null rows")
            if kind in ("unique", "primary_key"):
                dupes = con.execute(f"SELECT count(*) FROM (SELECT {cols} FROM {relation} GROUP BY ALL "
                                    "HAVING count(*) > 1)").fetchone()[0]
                if dupes:
                    violations.append(f"{node['name']}.{cols}: {kind}, {dupes} duplicated values")
    con.close()
    assert checked > 100, checked
    assert not violations, "\n".join(violations)


def test_the_salt_is_stored_nowhere(spark_run):
    """The PII salt reaches Spark as a session conf: no file the run left (the metastore, the table
    and lake files, the work and published files, dbt's artefacts and logs, the Dagster instance,
    the reports) holds it."""
    assert spark_run["returncode"] == 0
    needles = (TEST_SALT.encode("utf-8"), TEST_SALT.encode("utf-16-le"), TEST_SALT.encode("utf-8").hex().encode())
    found, scanned = [], 0
    for path in spark_run["root"].rglob("*"):
        if path.is_file():
            scanned += 1
            data = path.read_bytes()
            if any(n in data for n in needles):
                found.append(str(path.relative_to(spark_run["root"])))
    assert scanned > 50 and (spark_run["settings"].spark_dir / "metastore_db").is_dir(), scanned
    assert not found, found


def test_customer_keys_are_salted_like_duckdb(spark_run, built_settings):
    """The salted key of one policy's customer is the same on both engines (the salt arrived)."""
    assert spark_run["returncode"] == 0
    con = duckdb.connect()
    con.execute(f"ATTACH '{built_settings.work_db}' AS d (READ_ONLY)")
    folder = _spark_table(spark_run, "intermediate", "int_policies__current")
    pairs = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE s.customer_key = d.customer_key) FROM "
        f"read_parquet('{folder}/*.parquet') AS s JOIN d.intermediate.int_policies__current AS d USING (policy_no)").fetchone()
    con.close()
    assert pairs[0] > 100 and pairs[0] == pairs[1], pairs
