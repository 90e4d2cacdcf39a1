"""Raw suites validate the partitions a run loaded; mart suites and full runs the whole table.

A defect in an old day does not fail the check of a new day (it was checked when it arrived), a
defect in the new day does, and the ledger reconciliation looks at the same days as the batch. Failed
expectations come back with counts and samples although passing ones run as BOOLEAN_ONLY.
"""

from __future__ import annotations

import json

import duckdb
import pytest

from dagster_project.lib.quality.validate import covers_every_partition, scope_suite, validate_suites

SUITE = {
    "name": "raw_things",
    "meta": {"table": "raw.things", "layer": "raw", "asset_key": ["raw", "things"], "partition_column": "_partition"},
    "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "thing_id"},
         "meta": {"severity": "critical", "why": "key"}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "amount", "min_value": 0},
         "meta": {"severity": "critical", "why": "amounts are never negative"}},
        {"type": "unexpected_rows_expectation",
         "kwargs": {"unexpected_rows_query": (
             "select l.path from (select path, rows_loaded from raw._ingest_ledger where source = 'things' "
             "{ledger_partitions}) l left join (select _source_file, count(*) as n from {batch} group by 1) r "
             "on r._source_file = l.path where coalesce(r.n, 0) <> l.rows_loaded"),
             "description": "raw rows per file = ledger"},
         "meta": {"severity": "critical", "why": "nothing lost"}},
    ],
}


@pytest.fixture()
def warehouse(tmp_path):
    """Three days of 'things'; day 1 holds a negative amount (loaded, checked and accepted long ago)."""
    expectations = tmp_path / "expectations"
    expectations.mkdir()
    (expectations / "raw_things.json").write_text(json.dumps(SUITE), encoding="utf-8")
    db = tmp_path / "work.duckdb"
    con = duckdb.connect(str(db))
    con.execute("""create schema raw;
        create table raw.things as select i as thing_id,
            case when i = 3 then -5 else i end as amount,
            '2024-01-0' || (1 + i // 10)::varchar as _partition,
            'things/2024-01-0' || (1 + i // 10)::varchar || '.csv' as _source_file
        from range(30) r(i);
        create table raw._ingest_ledger as select 'things' as source, _partition as partition,
            _source_file as path, count(*) as rows_loaded from raw.things group by all""")
    con.close()
    return db, expectations


def _result(db, expectations, partitions):
    [result] = validate_suites(db, ["raw_things"], expectations_dir=expectations, partitions=partitions)
    return result


def test_scope_suite_restricts_the_batch_and_the_ledger_side():
    scoped, query = scope_suite(SUITE, ["2024-01-03", "2024-01-02"])
    assert query == "select * from raw.things where \"_partition\" in ('2024-01-02', '2024-01-03')"
    assert "and partition in ('2024-01-02', '2024-01-03')" in scoped["expectations"][2]["kwargs"]["unexpected_rows_query"]
    whole, none = scope_suite(SUITE, None)
    assert none is None and "{ledger_partitions}" not in whole["expectations"][2]["kwargs"]["unexpected_rows_query"]
    mart = {**SUITE, "meta": {k: v for k, v in SUITE["meta"].items() if k != "partition_column"}}
    assert scope_suite(mart, ["2024-01-03"])[1] is None  # a suite that does not opt in: the whole table


def test_a_new_day_is_checked_alone_and_an_old_defect_does_not_fail_it(warehouse):
    db, expectations = warehouse
    assert _result(db, expectations, ["2024-01-03"]).success
    whole = _result(db, expectations, None)
    assert not whole.success
    [failed] = whole.failed_critical
    # failures are re-run for details: the count and a sample come back
    assert failed.expectation_type == "expect_column_values_to_be_between"
    assert failed.unexpected_count == 1 and failed.sample == [-5]


def test_a_defect_in_the_new_day_fails_its_check(warehouse):
    db, expectations = warehouse
    con = duckdb.connect(str(db))
    con.execute("delete from raw.things where thing_id = 25")  # a row of day 3 lost after the ledger counted it
    con.close()
    result = _result(db, expectations, ["2024-01-03"])
    assert [o.description for o in result.failed_critical] == ["raw rows per file = ledger"]
    assert _result(db, expectations, ["2024-01-02"]).success


def test_a_run_over_every_partition_validates_the_whole_table(warehouse):
    db, _ = warehouse
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert covers_every_partition(con, SUITE["meta"], ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"])
        assert not covers_every_partition(con, SUITE["meta"], ["2024-01-02", "2024-01-03"])
        assert not covers_every_partition(con, {"table": "raw.things"}, ["2024-01-01"])
    finally:
        con.close()
