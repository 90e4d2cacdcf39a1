"""The scale benchmark: its pure parts, and the whole benchmark end to end at a tiny scale.

No timing assertions: the end-to-end test checks that every stage was measured, the floor's marts
equal the pipeline's, and the ratios were computed.
"""

from __future__ import annotations

import json
import sys
from datetime import date

import duckdb
import pytest

from dagster_project.settings import REPO_ROOT

# `benchmarks` is a top-level folder of the repository, not part of the installed package; pytest
# would otherwise resolve the name to this tests/benchmarks folder.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
for _name in [m for m in sys.modules if m == "benchmarks" or m.startswith("benchmarks.")]:
    if getattr(sys.modules[_name], "__file__", None) is None:
        del sys.modules[_name]

from benchmarks import floor, report  # noqa: E402
from benchmarks.measure import measure_command, peak_in_window  # noqa: E402
from benchmarks.run import cache_key, is_new_day_file, last_full_month, prefix_landing, stage_of_step  # noqa: E402

# ------------------------------------------------------------------------------------ pure parts


def test_last_full_month():
    assert last_full_month(date(2024, 1, 1), 730) == "2025-11"  # ends 2025-12-30: December is partial
    assert last_full_month(date(2024, 1, 1), 731) == "2025-12"  # ends 2025-12-31
    assert last_full_month(date(2024, 1, 1), 40) == "2024-01"
    assert last_full_month(date(2024, 1, 10), 5) == "2024-01"  # no full month: the partial one


def test_cache_key():
    assert cache_key(1.0, 730, 42) == "1-730-42"
    assert cache_key(0.02, 40, 7, date(2024, 3, 1)) == "0.02-40-7-2024-03-01"


def test_stage_of_step():
    assert stage_of_step("ingest_policies") == "ingest:policies"
    assert stage_of_step("raw__call_logs") == "ingest:call_logs"
    assert stage_of_step("cs_dbt_assets") == "dbt"
    assert stage_of_step("raw_policies_gx_check") == "gates"
    assert stage_of_step("published_marts") == "publish"
    assert stage_of_step("published__marts_gx_marts_published") == "gates"
    assert stage_of_step("something_else") == "other:something_else"


def test_warm_page_cache_reads_every_file(tmp_path):
    from benchmarks.run import warm_page_cache

    (tmp_path / "calls").mkdir()
    (tmp_path / "calls" / "2024-01-01.csv").write_bytes(b"x" * 70_000)
    (tmp_path / "_truth.json").write_bytes(b"{}")
    assert warm_page_cache(tmp_path) == 70_002


def test_is_new_day_file():
    assert is_new_day_file("claims/2024-01-31.csv", date(2024, 1, 31))
    assert is_new_day_file("calls/2024-01-31.csv", date(2024, 1, 31))
    assert not is_new_day_file("claims/2024-01-30.csv", date(2024, 1, 31))
    assert not is_new_day_file("audits/2024-01.xlsx", date(2024, 1, 31))


def test_prefix_landing_holds_back_the_new_day_and_links_the_rest(tmp_path):
    full = tmp_path / "full"
    for rel in ("claims/2024-01-30.csv", "claims/2024-01-31.csv", "audits/2024-01.xlsx", "surveys/2024-01-31.jsonl"):
        (full / rel).parent.mkdir(parents=True, exist_ok=True)
        (full / rel).write_text(rel, encoding="utf-8")
    held = prefix_landing(full, date(2024, 1, 31), tmp_path / "prefix")
    assert held == ["claims/2024-01-31.csv", "surveys/2024-01-31.jsonl"]
    kept = sorted(p.relative_to(tmp_path / "prefix").as_posix() for p in (tmp_path / "prefix").rglob("*.*"))
    assert kept == ["audits/2024-01.xlsx", "claims/2024-01-30.csv"]
    assert (tmp_path / "prefix" / "claims/2024-01-30.csv").read_text(encoding="utf-8") == "claims/2024-01-30.csv"


def test_ratio_and_targets():
    assert report.ratio(3.0, 2.0) == 1.5
    assert report.ratio(3.0, 0.0) is None and report.ratio(None, 1.0) is None
    assert report.rows_per_second(100, 4.0) == 25.0
    targets = {t["target"]: t for t in report.evaluate_targets(10.0, 1.25, 5 * report.GIB, 0.05, True, 1.6)}
    assert targets["total pipeline / floor"]["met"] is True
    assert targets["peak memory (GiB)"]["met"] is False
    assert targets["one-day incremental / full run"]["met"] is True
    assert targets["one-day incremental / its floor"]["met"] is False  # 1.6 > 1.5
    at_100 = {t["target"]: t for t in report.evaluate_targets(100.0, 1.2, 7 * report.GIB, 0.04, True, None)}
    assert at_100["total pipeline / floor"]["met"] is False and at_100["one-day incremental / full run"]["met"] is True
    ref = report.evaluate_targets(1.0, 2.0, None, None, True)
    assert all(not t["applies"] for t in ref if t["target"] != "completes")


def test_peak_in_window():
    timeline = [(1.0, 10), (2.0, 50), (3.0, 20)]
    assert peak_in_window(timeline, 1.5, 3.0) == 50
    assert peak_in_window(timeline, 3.1, 3.2) == 20  # no sample inside: the last one before
    assert peak_in_window([], 0, 1) is None


def test_measure_command_sees_a_child_process_memory(tmp_path):
    # The child allocates ~200 MiB and holds it briefly: the tree's peak must show it.
    code = "import time; b = bytearray(200 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096]); time.sleep(0.5)"
    m = measure_command("alloc", [sys.executable, "-c", code], env={}, cwd=tmp_path, log_path=tmp_path / "log")
    assert m.returncode == 0 and m.seconds > 0
    assert m.peak_rss_bytes > 200 * 1024 * 1024


def test_build_order_puts_parents_first():
    manifest = {"nodes": {
        "model.cs_warehouse.c": {"resource_type": "model", "package_name": "cs_warehouse",
                                 "depends_on": {"nodes": ["model.cs_warehouse.b", "seed.cs_warehouse.s"]}},
        "model.cs_warehouse.b": {"resource_type": "model", "package_name": "cs_warehouse",
                                 "depends_on": {"nodes": ["model.cs_warehouse.a"]}},
        "model.cs_warehouse.a": {"resource_type": "model", "package_name": "cs_warehouse", "depends_on": {"nodes": []}},
        "seed.cs_warehouse.s": {"resource_type": "seed", "package_name": "cs_warehouse", "depends_on": {"nodes": []}},
        "test.cs_warehouse.t": {"resource_type": "test", "package_name": "cs_warehouse",
                                "depends_on": {"nodes": ["model.cs_warehouse.c"]}},
    }}
    order = floor.build_order(manifest)
    assert order.index("model.cs_warehouse.a") < order.index("model.cs_warehouse.b") < order.index("model.cs_warehouse.c")
    assert order.index("seed.cs_warehouse.s") < order.index("model.cs_warehouse.c")
    assert "test.cs_warehouse.t" not in order


def test_model_sql_by_materialization():
    base = {"unique_id": "model.x.m", "relation_name": '"work"."marts"."m"', "compiled_code": "select 1 as a"}
    assert floor.model_sql({**base, "config": {"materialized": "view"}})[0].startswith('CREATE OR REPLACE VIEW "work"')
    assert floor.model_sql({**base, "config": {"materialized": "ephemeral"}}) == []
    contracted = {**base, "config": {"materialized": "table", "contract": {"enforced": True}},
                  "columns": {"a": {"name": "a", "data_type": "bigint",
                                    "constraints": [{"type": "not_null"}, {"type": "check", "expression": "a >= 0"}]}},
                  "constraints": [{"type": "check", "expression": "a < 10"}]}
    create, insert = floor.model_sql(contracted)
    assert create == 'CREATE OR REPLACE TABLE "work"."marts"."m" ("a" bigint NOT NULL CHECK (a >= 0), CHECK (a < 10))'
    con = duckdb.connect()
    con.execute("attach ':memory:' as work; create schema work.marts")
    con.execute(create)
    con.execute(insert)
    assert con.execute('select a from "work"."marts"."m"').fetchall() == [(1,)]
    # the floor checks the contract's constraints as the pipeline does: a violating row fails the model
    for code in ("select 12 as a", "select -1 as a", "select null::bigint as a"):
        with pytest.raises(duckdb.ConstraintException):
            for statement in floor.model_sql({**contracted, "compiled_code": code}):
                con.execute(statement)


def test_gate_aggregates_count_unexpected_rows():
    con = duckdb.connect()
    con.execute("create schema marts; create table marts.t as select * from (values (1, 'a'), (2, 'b'), (2, null), "
                "(7, 'x1')) v(n, s)")
    exps = [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "s"}},
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "n"}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "n", "min_value": 0, "max_value": 5}},
        {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "s", "regex": "^[a-z]$"}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "s", "value_set": ["a", "b"]}},
    ]
    values = con.execute("select " + ", ".join(floor.expectation_aggregate(e) for e in exps) + " from marts.t").fetchone()
    assert values == (1, 1, 1, 1, 1)
    assert floor.gate_passes({"type": "x", "kwargs": {"mostly": 0.7}}, 1, 4)
    assert not floor.gate_passes({"type": "x", "kwargs": {}}, 1, 4)


def test_compare_marts_tolerates_float_noise_but_not_a_changed_row(tmp_path):
    for name, noise, value in (("a", 0.0, "x"), ("b", 1e-12, "x"), ("c", 0.0, "y")):
        con = duckdb.connect(str(tmp_path / f"{name}.duckdb"))
        con.execute("create schema marts")
        con.execute(f"create table marts.m as select i, i / 3.0 + {noise} as r, '{value}' || (i = 2)::int as s "
                    "from range(5) t(i)")
        con.close()
    same = floor.compare_marts(tmp_path / "a.duckdb", tmp_path / "b.duckdb")
    assert [c.equal for c in same] == [True]
    changed = floor.compare_marts(tmp_path / "a.duckdb", tmp_path / "c.duckdb")
    assert not changed[0].equal and changed[0].only_in_pipeline == 5


# ------------------------------------------------------------------------------------ end to end


@pytest.mark.slow
def test_benchmark_end_to_end_at_tiny_scale(tmp_path, monkeypatch):
    from benchmarks.run import main

    monkeypatch.setenv("CSWH_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CSWH_BENCH_WORK", str(tmp_path / "work"))
    monkeypatch.setenv("CSWH_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("CSWH_PII_SALT", "bench-test-salt-16")
    # Without the monthly snapshot (a separate command outside the total, not compared with a floor):
    # tests/report/test_snapshot_e2e.py runs it through the pipeline's own instance.
    code = main(["--scale", "0.2", "--days", "40", "--no-snapshot"])
    doc = json.loads((tmp_path / "reports" / "bench" / "bench-0.2.json").read_text(encoding="utf-8"))
    assert (tmp_path / "reports" / "bench" / "bench-0.2.md").read_text(encoding="utf-8").startswith("# Benchmark")
    assert code == 0, doc["notes"]

    stages = {s["stage"]: s for s in doc["stages"]}
    expected = {"generate", "dbt", "gates", "publish", "overhead"} | {
        f"ingest:{s}" for s in ("policies", "claim_events", "call_logs", "surveys", "complaints", "audits")}
    assert expected <= set(stages), sorted(stages)
    for name in expected - {"overhead"}:
        assert stages[name]["seconds"] > 0, name
    assert "snapshot" not in stages
    for name in expected - {"generate", "overhead"}:
        assert stages[name]["floor_seconds"] > 0, name
        assert stages[name]["ratio"] is not None and stages[name]["ratio"] > 0, name
        assert stages[name]["peak_rss_bytes"] > 0 and stages[name]["floor_peak_rss_bytes"] > 0, name
    assert stages["ingest:policies"]["rows"] > 0 and stages["ingest:policies"]["rows_per_second"] > 0
    assert doc["total"]["ratio"] > 0 and doc["total"]["peak_rss_bytes"] > 0

    eq = doc["floor_equals_pipeline"]
    assert eq["passed"] and eq["tables"] == eq["tables_equal"] > 0, eq["differing"]
    assert doc["incremental"]["new_day"] == "2024-02-10" and doc["incremental"]["new_files"] >= 5
    inc = doc["incremental"]
    assert inc["share"] > 0 and inc["floor_seconds"] > 0
    assert inc["ratio"] == pytest.approx(inc["seconds"] / inc["floor_seconds"])
    # The one-day floor did the one-day run's work: the same marts, from only the new day's files.
    assert inc["floor_equals_run"]["tables"] == eq["tables"] and not inc["floor_equals_run"]["differing"], inc
    assert {t["target"] for t in doc["targets"]} >= {"one-day incremental / full run", "one-day incremental / its floor"}
    assert doc["generation"]["status"] == "generated" and doc["generation"]["seconds"] > 0
    assert {"python", "duckdb", "dagster", "dbt-core", "great-expectations"} <= set(doc["versions"])
    # Every run is recorded in the benchmark's Dagster instance, with its events and planning time.
    runs = doc["dagster_instance"]["runs"]
    assert [r["job"] for r in runs] == ["warehouse_pipeline", "warehouse_pipeline"]
    assert all(r["status"] == "SUCCESS" and r["events"] > r["materializations"] > 0 for r in runs), runs
    assert runs[0]["materializations"] > runs[1]["materializations"]  # the backlog has more months
    assert doc["dagster_instance"]["event_log_bytes"] > 0
    assert doc["machine"]["cpu_count_logical"] >= 1 and doc["machine"]["memory_bytes"] > 0
