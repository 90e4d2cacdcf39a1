"""The SQL built from a contract (``validate``) and landing-file naming (``landing``), unit-tested
on an in-memory DuckDB with a handful of staged rows."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from dagster_project.lib.ingest import CONTRACTS
from dagster_project.lib.ingest.contract import Column, SourceContract
from dagster_project.lib.ingest.landing import file_name_for, partition_of
from dagster_project.lib.ingest.readers import create_staging_table, insert_rows
from dagster_project.lib.ingest.validate import duplicate_update_sql, raw_table_ddl, validation_sql

TOY = SourceContract(
    source="toy", folder="toy", file_suffix=".csv", partitioning="daily", file_format="csv", encoding="utf-8",
    key=("id",),
    columns=(
        Column("id", "VARCHAR", required=True, pattern=r"^T[0-9]{3}$"),
        Column("kind", "VARCHAR", required=True, codes=("A", "B")),
        Column("amount", "DECIMAL(10,2)", min_value=0, max_value=1000),
        Column("seen_at", "TIMESTAMP", required=True, no_future=True),
        Column("flag", "BOOLEAN"),
        Column("note", "VARCHAR"),
    ),
)


def check(rows: list[dict]) -> list[tuple]:
    """Validate staged rows of TOY; returns (line, reason_code, reason) per row."""
    con = duckdb.connect()
    create_staging_table(con, TOY, "stg")
    staged = []
    for line, row in enumerate(rows, start=1):
        values = {"id": "T001", "kind": "A", "amount": "1.50", "seen_at": "2024-01-05 10:00:00", "flag": "true",
                  "note": "x", **row}
        staged.append(("toy/2024-01-05.csv", line, "2024-01-05", None, None, None,
                       *(values[c] for c in TOY.column_names)))
    insert_rows(con, "stg", staged)
    con.execute(f"CREATE TEMP TABLE checked AS {validation_sql(TOY, 'stg')}")
    con.execute(duplicate_update_sql(TOY, "checked"))
    return con.execute("SELECT _line, reason_code, reason FROM checked ORDER BY _line").fetchall()


@pytest.mark.parametrize(("row", "code", "message"), [
    ({}, None, None),
    ({"id": " "}, "MISSING_KEY", "id is missing"),
    ({"kind": None}, "MISSING_VALUE", "kind is missing"),
    ({"id": "X1"}, "BAD_FORMAT", "id: 'X1' does not match ^T[0-9]{3}$"),
    ({"kind": "C"}, "UNKNOWN_CODE", "kind: 'C' is not one of A, B"),
    ({"amount": "1.2.3"}, "BAD_NUMBER", "amount: '1.2.3' is not a number of type DECIMAL(10,2)"),
    ({"amount": "-1"}, "OUT_OF_RANGE", "amount: '-1' is outside [0, 1000]"),
    ({"seen_at": "2024-01-05T10:00"}, "BAD_DATE", "seen_at: '2024-01-05T10:00' is not a timestamp %Y-%m-%d %H:%M:%S"),
    ({"seen_at": "2024-01-07 00:00:00"}, "FUTURE_DATE", "seen_at: '2024-01-07 00:00:00' is after the file's day 2024-01-05"),
    ({"seen_at": "2024-01-06 23:59:59"}, None, None),  # one day of grace: calls crossing midnight
    ({"flag": "yes"}, "BAD_BOOLEAN", "flag: 'yes' is not true or false"),
    ({"note": None, "amount": None, "flag": None}, None, None),  # optional columns may be empty
])
def test_reason_codes(row, code, message):
    [(_, got_code, got_message)] = check([row])
    assert (got_code, got_message) == (code, message)


def test_first_failing_column_names_the_reason():
    [(_, code, message)] = check([{"kind": "Z", "amount": "abc"}])
    assert (code, message) == ("UNKNOWN_CODE", "kind: 'Z' is not one of A, B")


def test_duplicate_keeps_the_first_valid_occurrence():
    result = check([{"id": "T001", "kind": "Z"}, {"id": "T001"}, {"id": "T002"}, {"id": "T001"}, {"id": "T001"}])
    assert [(line, code) for line, code, _ in result] == [
        (1, "UNKNOWN_CODE"), (2, None), (3, None), (4, "DUPLICATE_KEY"), (5, "DUPLICATE_KEY")]
    assert result[3][2] == "id: 'T001' repeats line 2 of the same file"


def test_raw_table_ddl_is_contract_order_then_lineage():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw")
    con.execute(raw_table_ddl(CONTRACTS["call_logs"]))
    names = [r[0] for r in con.execute("DESCRIBE raw.call_logs").fetchall()]
    assert names == [*CONTRACTS["call_logs"].column_names, "_source_file", "_source_line", "_partition",
                     "_ingested_at", "_run_id"]


def test_partition_keys_from_file_names():
    policies, audits = CONTRACTS["policies"], CONTRACTS["audits"]
    assert partition_of(policies, "2024-02-29.csv") == "2024-02-29"
    assert partition_of(policies, "2023-02-29.csv") is None
    assert partition_of(policies, "2024-02-01.csv.bak") is None
    assert partition_of(policies, "2024-02.csv") is None
    assert partition_of(audits, "2024-07.xlsx") == "2024-07-01"
    assert partition_of(audits, "2024-13.xlsx") is None
    assert file_name_for(audits, "2024-07-01") == "2024-07.xlsx"
    assert file_name_for(CONTRACTS["surveys"], date(2024, 7, 1).isoformat()) == "2024-07-01.jsonl"
