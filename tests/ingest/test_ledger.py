"""Ledger, partition replacement, complaint history and lineage on hand-written files."""

from __future__ import annotations

import duckdb
import pytest
from ingest_helpers import complaint_row, policy_row, write_complaints, write_policies

from dagster_project.lib.ingest.loader import SOURCES, ingest_all_files, ingest_partition


def counts(settings):
    con = duckdb.connect(str(settings.work_db), read_only=True)
    try:
        tables = [*SOURCES, "complaints_history", "_ingest_ledger", *(f"quarantine_{s}" for s in SOURCES)]
        out = {t: con.execute(f"SELECT count(*) FROM raw.{t}").fetchall()[0][0] for t in tables}
        out["ledger_rows"] = con.execute(
            "SELECT * EXCLUDE (ingested_at, run_id) FROM raw._ingest_ledger ORDER BY path").fetchall()
        return out
    finally:
        con.close()


def test_rerun_is_a_noop(hand_landing):
    first = ingest_all_files(hand_landing, run_id="one")
    assert {f.status for f in first.files} == {"loaded"}
    before = counts(hand_landing)
    second = ingest_all_files(hand_landing, run_id="two")
    assert {f.status for f in second.files} == {"skipped"}
    assert second.rows_loaded == 0
    assert counts(hand_landing) == before
    con = duckdb.connect(str(hand_landing.work_db), read_only=True)
    assert con.execute("SELECT DISTINCT run_id FROM raw._ingest_ledger").fetchall() == [("one",)]


def test_resent_day_replaces_exactly_that_day(hand_landing):
    ingest_all_files(hand_landing, run_id="one")
    write_policies(hand_landing.landing_dir, "2024-01-05", [policy_row(1, premium="999.00"), policy_row(7)])
    summary = ingest_all_files(hand_landing, run_id="two")
    changed = [f for f in summary.files if f.status == "loaded"]
    assert [(f.path, f.rows_loaded) for f in changed] == [("policies/2024-01-05.csv", 2)]
    con = duckdb.connect(str(hand_landing.work_db), read_only=True)
    rows = con.execute(
        "SELECT _partition, policy_no, premium, _run_id FROM raw.policies ORDER BY _partition, policy_no"
    ).fetchall()
    assert [r for r in rows if r[0] == "2024-01-05"] == [
        ("2024-01-05", "PJL2024000001", 999, "two"), ("2024-01-05", "PJL2024000007", 3500.5, "two")]
    assert [r[1] for r in rows if r[0] == "2024-01-06"] == ["PJL2024000101", "PJL2024000102", "PJL2024000103"]
    assert {r[3] for r in rows if r[0] == "2024-01-06"} == {"one"}
    ledger = con.execute("SELECT rows_loaded, run_id FROM raw._ingest_ledger WHERE path = 'policies/2024-01-05.csv'"
                         ).fetchall()
    assert ledger == [(2, "two")]


def test_late_older_complaint_state_does_not_win(hand_settings):
    landing = hand_settings.landing_dir
    write_complaints(landing, "2024-01-05", [complaint_row(1, updated="2024-01-05 10:20:00")])
    write_complaints(landing, "2024-01-09", [complaint_row(1, status="CLOSED", closed_ts="2024-01-09 16:00:00",
                                                           updated="2024-01-09 16:00:00")])
    ingest_all_files(hand_settings, run_id="one")
    # A file for an earlier day arrives late, with a state older than the closed one.
    write_complaints(landing, "2024-01-07", [complaint_row(1, liability="AT_FAULT", updated="2024-01-07 09:00:00")])
    ingest_all_files(hand_settings, run_id="two")
    con = duckdb.connect(str(hand_settings.work_db), read_only=True)
    assert con.execute("SELECT status, updated_ts::VARCHAR, _partition FROM raw.complaints").fetchall() == [
        ("CLOSED", "2024-01-09 16:00:00", "2024-01-09")]
    assert con.execute("SELECT count(*) FROM raw.complaints_history").fetchall() == [(3,)]
    con.close()
    # Re-sending the newest day without the ticket lets the next-newest state take over.
    write_complaints(landing, "2024-01-09", [complaint_row(2, "2024-01-09")])
    ingest_all_files(hand_settings, run_id="three")
    con = duckdb.connect(str(hand_settings.work_db), read_only=True)
    assert con.execute("SELECT complaint_no, liability, _partition FROM raw.complaints ORDER BY 1").fetchall() == [
        ("CPJL00000001", "AT_FAULT", "2024-01-07"), ("CPJL00000002", "PENDING", "2024-01-09")]


def test_complaint_is_flattened_and_actions_kept_as_json(hand_settings):
    write_complaints(hand_settings.landing_dir, "2024-01-05", [complaint_row(1)])
    ingest_all_files(hand_settings, run_id="one")
    con = duckdb.connect(str(hand_settings.work_db), read_only=True)
    name, phone, actions, accepted, ext = con.execute(
        "SELECT complainant_name, complainant_phone, actions, is_accepted, extension_level FROM raw.complaints"
    ).fetchall()[0]
    assert (name, phone, accepted, ext) == ("李四", "13812345678", True, 0)
    assert con.execute("SELECT json_extract_string(?, '$[0].handler_id')", [actions]).fetchall() == [("H0012",)]


def test_lineage_columns(hand_landing):
    ingest_all_files(hand_landing, run_id="lineage-run")
    con = duckdb.connect(str(hand_landing.work_db), read_only=True)
    for source in SOURCES:
        rows = con.execute(
            f"SELECT DISTINCT _source_file, _partition, _run_id, _ingested_at IS NOT NULL FROM raw.{source} "
            "ORDER BY 1").fetchall()
        assert rows, source
        for file, partition, run_id, has_time in rows:
            assert partition[:7] in file.replace("2024-01.xlsx", "2024-01-01")
            assert (run_id, has_time) == ("lineage-run", True)
    assert con.execute("SELECT list(_source_line ORDER BY _source_line) FROM raw.policies "
                       "WHERE _partition = '2024-01-05'").fetchall() == [([1, 2, 3],)]


def test_ingest_partition_loads_one_day(hand_landing):
    result = ingest_partition(hand_landing, "policies", "2024-01-06", run_id="p")
    assert (result.status, result.rows_loaded) == ("loaded", 3)
    missing = ingest_partition(hand_landing, "policies", "2024-02-01", run_id="p")
    assert missing.status == "no_file"
    con = duckdb.connect(str(hand_landing.work_db), read_only=True)
    assert con.execute("SELECT DISTINCT _partition FROM raw.policies").fetchall() == [("2024-01-06",)]


def test_a_failing_statement_fails_that_batch_only(hand_landing, monkeypatch):
    from dagster_project.lib.ingest import surveys

    def broken(con, files, table, workdir):
        raise duckdb.InternalException("INTERNAL Error: something broke near 'PJL2024000001,张三,13812345678'")

    monkeypatch.setattr(surveys, "stage_files", broken)
    summary = ingest_all_files(hand_landing, run_id="one")
    by_source = summary.by_source()
    assert by_source["surveys"]["failed_files"] == 2
    assert all(c["failed_files"] == 0 for s, c in by_source.items() if s != "surveys")
    [first, _] = [f for f in summary.failed]
    # named, scrubbed: the quoted text of the exception (a landing line) never reaches the ledger
    assert first.message == "surveys/2024-01-05.jsonl: not loaded: InternalException: INTERNAL Error: something broke near <...>"


def test_a_full_disk_stops_the_ingest_with_a_clear_message(hand_landing, monkeypatch):
    from dagster_project.lib.ingest import surveys
    from dagster_project.lib.ingest.guard import DiskFull

    def full(con, files, table, workdir):
        raise duckdb.IOException("IO Error: No space left on device")

    monkeypatch.setattr(surveys, "stage_files", full)
    with pytest.raises(DiskFull, match="no space left on the device"):
        ingest_all_files(hand_landing, run_id="one")


def test_misnamed_files_are_ignored_and_reported(hand_landing):
    (hand_landing.landing_dir / "policies" / "2024-01-07.csv.bak").write_text("x")
    summary = ingest_all_files(hand_landing, run_id="one")
    assert summary.ignored_files == ["policies/2024-01-07.csv.bak"]
    assert ("IGNORED policies/2024-01-07.csv.bak: name does not fit the contract's name YYYY-MM-DD.csv"
            in summary.format_table())
    assert not summary.failed
    con = duckdb.connect(str(hand_landing.work_db), read_only=True)
    assert con.execute("SELECT source, partition, status FROM raw._ingest_ledger WHERE path = ?",
                       ["policies/2024-01-07.csv.bak"]).fetchall() == [("policies", None, "ignored")]
    con.close()
