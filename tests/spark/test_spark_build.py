"""The same dbt project on Apache Spark builds the same marts as on DuckDB (docs/spark.md).

The session's tiny warehouse (one DuckDB pipeline run, tests/conftest.py) gives the raw tables; they
are exported as Parquet into a lake folder, and one ``dbt build --target spark`` (dbt-spark in
session mode, ``local[2]``, a Derby metastore and Parquet tables in a temporary folder) registers
them in the Spark catalog and builds every seed and model (the data tests and unit tests too with
CSWH_TEST_SPARK_FULL=1). Every mart Spark
built must then equal the DuckDB build's: exact for integers, strings, dates and booleans, within
1e-9 relative for floats. Spark's tables are Parquet folders, so DuckDB reads them directly for the
comparison, for the audit of the contract constraints (which Spark does not enforce) and no Spark
session stays open in the test process.

Skipped only where pyspark or a Java runtime is missing (``make spark-install`` installs both); in
CI a missing piece fails the test.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import subprocess
import time
from pathlib import Path

import duckdb
import pytest

from dagster_project.lib.transform.dbt_project import BUILD_COMMAND, dbt_executable
from dagster_project.settings import DBT_PROJECT_DIR
from tests.conftest import TEST_SALT, require_tools

pytestmark = pytest.mark.slow

# On two cores dbt's 215 data tests add about 95 s to the Spark build (37% of its node time) and the
# 32 unit tests 2-4 minutes: both run with CSWH_TEST_SPARK_FULL=1 (`make test-spark-full`); every
# `make test` builds the seeds and models and checks the marts, the constraints and the salt.
FULL = os.environ.get("CSWH_TEST_SPARK_FULL") == "1"


def _require_spark() -> None:
    """Skip where pyspark or Java is missing, and say which; in CI (CI=true) fail instead: .ci/run
    installs both (make spark-install)."""
    missing = []
    if importlib.util.find_spec("pyspark") is None or importlib.util.find_spec("dbt.adapters.spark") is None:
        missing.append("the spark extra (make spark-install)")
    if shutil.which("java") is None:
        missing.append("a Java runtime (make spark-install installs one)")
    require_tools(missing)

RELATIVE_TOLERANCE = 1e-9
# Below this a float is zero: a difference of summation order around 0 has no relative size.
ABSOLUTE_TOLERANCE = 1e-12
FLOAT_TYPES = ("DOUBLE", "FLOAT", "REAL")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _export_raw(work_db: Path, lake: Path) -> list[str]:
    """Every raw.* table of the DuckDB build as one Parquet folder under ``lake`` (what ingest for
    Spark writes)."""
    con = duckdb.connect(str(work_db), read_only=True)
    try:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw' "
            "AND table_type = 'BASE TABLE' ORDER BY 1").fetchall()]
        for table in tables:
            folder = lake / table
            folder.mkdir(parents=True)
            con.execute(f"COPY raw.{_quote(table)} TO '{folder / 'part-0.parquet'}' (FORMAT parquet)")
    finally:
        con.close()
    return tables


def spark_dbt(settings, root: Path, lake: Path, command: list[str]) -> dict:
    """One dbt command on the spark target over ``lake``, its folders under ``root``: exit code,
    console output, run results and wall time."""
    spark_dir, target, logs = root / "spark", root / "target", root / "logs"
    env = {
        **settings.dbt_env(),
        "CSWH_LAKE_DIR": str(lake),
        "CSWH_SPARK_DIR": str(spark_dir),
        "CSWH_SPARK_MASTER": "local[2]",
        # Spark's own scratch files (shuffle) stay in the temporary folder
        "SPARK_LOCAL_DIRS": str(root / "scratch"),
    }
    started = time.monotonic()
    proc = subprocess.run(
        [dbt_executable(), *command, "--target", "spark",
         "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
         "--target-path", str(target), "--log-path", str(logs), "--no-use-colors"],
        env=env, cwd=root, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / "console.log", "a", encoding="utf-8") as fh:
        fh.write(proc.stdout + proc.stderr)
    results_file = target / "run_results.json"
    results = json.loads(results_file.read_text(encoding="utf-8")) if results_file.exists() else {"results": []}
    return {"returncode": proc.returncode, "output": proc.stdout + proc.stderr, "results": results,
            "seconds": seconds}


def _summary(run: dict) -> tuple[dict[str, int], list[str]]:
    counts: dict[str, int] = {}
    failed = []
    for result in run["results"]["results"]:
        counts[result["status"]] = counts.get(result["status"], 0) + 1
        if result["status"] not in ("success", "pass"):
            failed.append(f"{result['unique_id']}: {result['status']} {(result.get('message') or '')[:400]}")
    return counts, failed


@pytest.fixture(scope="module")
def spark_build(built_settings, tmp_path_factory):
    """The pipeline's dbt build (seeds, models, data tests) on Spark over the session warehouse's
    raw tables, then the unit tests (they read the built relations' columns, as on DuckDB, where
    they run after the build too)."""
    _require_spark()
    root = tmp_path_factory.mktemp("spark")
    lake = root / "lake"
    exported = _export_raw(built_settings.work_db, lake)
    # the pipeline's own build command (without the data tests unless FULL)
    build = spark_dbt(built_settings, root, lake, [*BUILD_COMMAND, *([] if FULL else ["--exclude-resource-type", "test"])])
    return {"root": root, "spark_dir": root / "spark", "warehouse": root / "spark" / "warehouse",
            "target": root / "target", "logs": root / "logs", "exported": exported, "lake": lake,
            "build": build, "returncode": build["returncode"], "output": build["output"]}


def _manifest(build) -> dict:
    return json.loads((build["target"] / "manifest.json").read_text(encoding="utf-8"))


def _spark_table(build, schema: str, table: str) -> Path:
    return build["warehouse"] / f"{schema}.db" / table


def test_spark_build_passes_every_node(spark_build):
    counts, failed = _summary(spark_build["build"])
    assert spark_build["build"]["returncode"] == 0 and not failed, (
        f"dbt build --target spark: exit {spark_build['build']['returncode']}, {counts}\n" + "\n".join(failed[:30]))
    kinds = {r["unique_id"].split(".")[0] for r in spark_build["build"]["results"]["results"]}
    assert {"seed", "model", *(["test"] if FULL else [])} <= kinds, kinds
    print(f"spark build: {counts} in {spark_build['build']['seconds']:.0f} s")


@pytest.mark.skipif(not FULL, reason="dbt unit tests on Spark: CSWH_TEST_SPARK_FULL=1 (make test-spark-full)")
def test_spark_unit_tests_pass(spark_build, built_settings):
    units = spark_dbt(built_settings, spark_build["root"], spark_build["lake"], ["test", "--select", "test_type:unit"])
    counts, failed = _summary(units)
    assert units["returncode"] == 0 and not failed, (
        f"dbt test --select test_type:unit --target spark: {counts}\n" + "\n".join(failed[:30]))
    assert counts.get("pass", 0) >= 20, counts
    print(f"spark unit tests: {counts} in {units['seconds']:.0f} s")


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
    order = ", ".join([_quote(c) for c in names if c not in floats] + [_quote(c) for c in floats])
    duck = f"SELECT {', '.join(_quote(c) for c in names)} FROM d.marts.{_quote(duck_table)} ORDER BY {order}"
    spark_cols = ", ".join(f"CAST({_quote(c)} AS {t}) AS {_quote(c)}" for c, t in cols)
    spark = (f"SELECT {spark_cols} FROM read_parquet('{spark_folder}/*.parquet') ORDER BY {order}")
    return names, floats, duck, spark


def test_every_mart_equals_the_duckdb_build(spark_build, built_settings):
    assert spark_build["returncode"] == 0, spark_build["output"][-3000:]
    con = duckdb.connect()
    con.execute(f"ATTACH '{built_settings.work_db}' AS d (READ_ONLY)")
    problems, equal, worst = [], 0, 0.0
    marts = _mart_models(_manifest(spark_build))
    assert len(marts) >= 20, [m["name"] for m in marts]
    for node in marts:
        name = node["name"]
        folder = _spark_table(spark_build, "marts", node["alias"])
        if not list(folder.glob("*.parquet")):
            problems.append(f"{name}: no Parquet files in {folder}")
            continue
        spark_names = [r[0] for r in con.execute(
            f"DESCRIBE SELECT * FROM read_parquet('{folder}/*.parquet')").fetchall()]
        names, floats, duck_sql, spark_sql = _comparable(con, name, folder)
        if spark_names != names:
            problems.append(f"{name}: columns differ: spark {spark_names} vs duckdb {names}")
            continue
        a, b = con.execute(duck_sql).fetchall(), con.execute(spark_sql).fetchall()
        if len(a) != len(b):
            problems.append(f"{name}: {len(b)} rows on Spark, {len(a)} on DuckDB")
            continue
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
        if bad:
            problems.append(f"{name}: " + "; ".join(bad[:6]))
        else:
            equal += 1
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


def test_contract_constraints_hold_on_spark(spark_build):
    """dbt-spark does not enforce contract constraints on Parquet tables: every not_null, unique
    and primary-key constraint of every contracted model is checked on the rows Spark wrote."""
    assert spark_build["returncode"] == 0, spark_build["output"][-3000:]
    contracted = [n for n in _manifest(spark_build)["nodes"].values()
                  if n["resource_type"] == "model" and (n["config"].get("contract") or {}).get("enforced")]
    assert contracted
    con = duckdb.connect()
    violations, checked = [], 0
    for node in contracted:
        relation = f"read_parquet('{_spark_table(spark_build, node['schema'], node['alias'])}/*.parquet')"
        for kind, columns in _constraints(node):
            cols = ", ".join(_quote(c) for c in columns)
            checked += 1
            if kind in ("not_null", "primary_key"):
                nulls = con.execute(f"SELECT count(*) FROM {relation} WHERE "
                                    + " OR ".join(f"{_quote(c)} IS NULL" for c in columns)).fetchone()[0]
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


def test_the_salt_is_stored_nowhere(spark_build):
    """The PII salt reaches Spark as a session conf: no view definition, metastore file, table file
    or dbt log/artefact of the build holds it."""
    assert spark_build["returncode"] == 0, spark_build["output"][-3000:]
    needles = (TEST_SALT.encode("utf-8"), TEST_SALT.encode("utf-16-le"), TEST_SALT.encode("utf-8").hex().encode())
    found, scanned = [], 0
    for folder in (spark_build["spark_dir"], spark_build["target"], spark_build["logs"]):
        for path in folder.rglob("*"):
            if path.is_file():
                scanned += 1
                data = path.read_bytes()
                if any(n in data for n in needles):
                    found.append(str(path))
    assert scanned > 50 and (spark_build["spark_dir"] / "metastore_db").is_dir(), scanned
    assert not found, found


def test_customer_keys_are_salted_like_duckdb(spark_build, built_settings):
    """The salted key of one policy's customer is the same on both engines (the salt arrived)."""
    assert spark_build["returncode"] == 0, spark_build["output"][-3000:]
    con = duckdb.connect()
    con.execute(f"ATTACH '{built_settings.work_db}' AS d (READ_ONLY)")
    folder = _spark_table(spark_build, "intermediate", "int_policies__current")
    pairs = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE s.customer_key = d.customer_key) FROM "
        f"read_parquet('{folder}/*.parquet') AS s JOIN d.intermediate.int_policies__current AS d USING (policy_no)").fetchone()
    con.close()
    assert pairs[0] > 100 and pairs[0] == pairs[1], pairs
