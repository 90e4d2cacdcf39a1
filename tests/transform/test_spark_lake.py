"""The lake the Spark engine reads (docs/spark.md#the-lake): one Parquet file per month of ingest
partitions of every raw table, rewritten only where a load changed the month. DuckDB alone: no
Spark needed."""

from __future__ import annotations

import duckdb
import pytest

from dagster_project.lib.transform.spark_engine import LAKE_STATE_FILE, mirror_table

LOAD = """INSERT INTO raw.calls SELECT i, 'calls/' || p || '.csv', i, p, TIMESTAMP '2026-01-01 00:00:00' + INTERVAL (i) SECOND, ?
          FROM range(?, ?) AS r(i), (SELECT ? AS p)"""


@pytest.fixture()
def con(tmp_path):
    con = duckdb.connect(str(tmp_path / "work.duckdb"))
    con.execute("CREATE SCHEMA raw")
    con.execute("CREATE TABLE raw.calls (call_id BIGINT, _source_file VARCHAR, _source_line BIGINT, _partition VARCHAR, "
                "_ingested_at TIMESTAMP, _run_id VARCHAR)")
    # two days in January, one each in February and March
    for n, day in enumerate(("2025-01-01", "2025-01-02", "2025-02-10", "2025-03-31")):
        con.execute(LOAD, ["run-1", n * 10, n * 10 + 10, day])
    yield con
    con.close()


def _files(folder):
    """Each Parquet file's identity (inode, modification time): a rewritten file gets a new one."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.glob("*.parquet")}


def _lake_equals_table(con, folder) -> bool:
    scan = f"read_parquet('{folder}/*.parquet')"
    return con.execute(f"SELECT count(*) FROM (SELECT * FROM {scan} EXCEPT ALL SELECT * FROM raw.calls)").fetchone()[0] == 0 \
        and con.execute(f"SELECT count(*) FROM (SELECT * FROM raw.calls EXCEPT ALL SELECT * FROM {scan})").fetchone()[0] == 0


def test_each_month_is_one_file_and_an_unchanged_table_is_not_rewritten(con, tmp_path):
    folder = tmp_path / "lake" / "calls"
    assert mirror_table(con, "calls", folder) == {"written": 3, "removed": 0, "kept": 0, "rows": 40}
    assert sorted(_files(folder)) == ["part-2025-01.parquet", "part-2025-02.parquet", "part-2025-03.parquet"]
    assert (folder / LAKE_STATE_FILE).exists() and _lake_equals_table(con, folder)
    before = _files(folder)
    assert mirror_table(con, "calls", folder) == {"written": 0, "removed": 0, "kept": 3, "rows": 40}
    assert _files(folder) == before


def test_a_re_sent_day_replaces_its_months_file_only_and_a_gone_month_loses_it(con, tmp_path):
    folder = tmp_path / "lake" / "calls"
    mirror_table(con, "calls", folder)
    before = _files(folder)
    # a January day is re-sent: its rows replaced by a later run, same count, other values
    con.execute("DELETE FROM raw.calls WHERE _partition = '2025-01-02'")
    con.execute(LOAD, ["run-2", 110, 120, "2025-01-02"])
    assert mirror_table(con, "calls", folder) == {"written": 1, "removed": 0, "kept": 2, "rows": 40}
    after = _files(folder)
    assert after["part-2025-01.parquet"] != before["part-2025-01.parquet"]
    assert {k: v for k, v in after.items() if k != "part-2025-01.parquet"} == \
        {k: v for k, v in before.items() if k != "part-2025-01.parquet"}
    assert _lake_equals_table(con, folder)
    # a new day in February rewrites February
    con.execute(LOAD, ["run-3", 200, 205, "2025-02-11"])
    assert mirror_table(con, "calls", folder) == {"written": 1, "removed": 0, "kept": 2, "rows": 45}
    con.execute("DELETE FROM raw.calls WHERE _partition = '2025-03-31'")
    assert mirror_table(con, "calls", folder) == {"written": 0, "removed": 1, "kept": 2, "rows": 35}
    assert "part-2025-03.parquet" not in _files(folder) and _lake_equals_table(con, folder)


def test_a_new_column_rewrites_every_partition_and_an_empty_table_keeps_its_schema(con, tmp_path):
    folder = tmp_path / "lake" / "calls"
    mirror_table(con, "calls", folder)
    con.execute("ALTER TABLE raw.calls ADD COLUMN queue VARCHAR")
    assert mirror_table(con, "calls", folder)["written"] == 3 and _lake_equals_table(con, folder)
    con.execute("DELETE FROM raw.calls")
    assert mirror_table(con, "calls", folder) == {"written": 1, "removed": 3, "kept": 0, "rows": 0}
    columns = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{folder}/*.parquet')").fetchall()]
    assert columns[0] == "call_id" and columns[-1] == "queue"


def test_a_state_file_that_lies_is_caught_by_the_missing_file(con, tmp_path):
    """A partition file deleted behind the mirror's back (or never renamed into place) is written
    again although the state file lists it."""
    folder = tmp_path / "lake" / "calls"
    mirror_table(con, "calls", folder)
    (folder / "part-2025-01.parquet").unlink()
    assert mirror_table(con, "calls", folder)["written"] == 1 and _lake_equals_table(con, folder)


def test_a_table_without_load_stamps_is_one_file_written_every_time(con, tmp_path):
    """The ingest ledger is a dbt source whose rows carry no partition or run stamp."""
    con.execute("CREATE TABLE raw.ledger (source VARCHAR, path VARCHAR)")
    con.execute("INSERT INTO raw.ledger VALUES ('calls', 'calls/2025-01-01.csv'), ('calls', 'calls/2025-01-02.csv')")
    folder = tmp_path / "lake" / "ledger"
    assert mirror_table(con, "ledger", folder) == {"written": 1, "removed": 0, "kept": 0, "rows": 2}
    assert mirror_table(con, "ledger", folder) == {"written": 1, "removed": 0, "kept": 0, "rows": 2}
    assert sorted(_files(folder)) == ["part-all.parquet"]
    assert con.execute(f"SELECT count(*) FROM read_parquet('{folder}/*.parquet')").fetchone()[0] == 2
