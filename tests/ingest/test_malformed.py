"""Malformed landing input: each kind of defect in its own test, with its expected outcome —
a quarantine row with a specific reason code (and the row count identity intact), or a failure of
exactly that file's partition with a message naming the file and the problem."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest
from ingest_helpers import (
    audit_row, call_row, claim_row, complaint_row, policy_row, survey_row, write_audits, write_calls,
    write_claims, write_complaints, write_policies, write_surveys,
)

from dagster_project.lib.ingest.loader import ingest_all_files

DAY, OTHER_DAY = "2024-01-05", "2024-01-06"


def ingest(settings, source):
    summary = ingest_all_files(settings, run_id="malformed", sources=[source])
    by_path = {f.path: f for f in summary.files}
    con = duckdb.connect(str(settings.work_db), read_only=True)
    return summary, by_path, con


def quarantine(con, source):
    return con.execute(
        f"SELECT _source_file, _source_line, reason_code, reason, raw_text FROM raw.quarantine_{source} "
        "ORDER BY _source_file, _source_line"
    ).fetchall()


def assert_identity(result):
    assert result.status == "loaded"
    assert result.rows_landed == result.rows_loaded + result.rows_quarantined


def test_wrong_column_count_is_quarantined_with_line_and_text(hand_settings):
    path = write_policies(hand_settings.landing_dir, DAY, [policy_row(i) for i in range(1, 6)])
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2] + ",EXTRA"  # data line 2: one field too many
    lines[4] = ",".join(lines[4].split(",")[:5])  # data line 4: too few
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    _, files, con = ingest(hand_settings, "policies")
    result = files[f"policies/{DAY}.csv"]
    assert_identity(result)
    assert (result.rows_landed, result.rows_loaded, result.rows_quarantined) == (5, 3, 2)
    rows = quarantine(con, "policies")
    assert [(r[1], r[2]) for r in rows] == [(2, "WRONG_COLUMN_COUNT"), (4, "WRONG_COLUMN_COUNT")]
    assert rows[0][4] == lines[2]
    # the valid rows keep their own line numbers around the rejected ones
    loaded = con.execute("SELECT policy_no, _source_line FROM raw.policies ORDER BY _source_line").fetchall()
    assert loaded == [("PJL2024000001", 1), ("PJL2024000003", 3), ("PJL2024000005", 5)]


def test_non_numeric_amount(hand_settings):
    write_claims(hand_settings.landing_dir, DAY, [claim_row(1), claim_row(2, amount="12,5OO.00"), claim_row(3)])
    _, files, con = ingest(hand_settings, "claim_events")
    assert_identity(files[f"claims/{DAY}.csv"])
    rows = quarantine(con, "claim_events")
    assert [(r[1], r[2]) for r in rows] == [(2, "BAD_NUMBER")]
    assert "amount" in rows[0][3] and "12,5OO.00" in rows[0][3]
    assert rows[0][4].startswith("E000000000002,CLJL2024000001,") and '"12,5OO.00"' in rows[0][4]
    assert con.execute("SELECT count(*) FROM raw.claim_events").fetchall() == [(2,)]


def test_bad_date(hand_settings):
    write_policies(hand_settings.landing_dir, DAY, [policy_row(1), policy_row(2, start_date="2024-02-30")])
    _, files, con = ingest(hand_settings, "policies")
    assert_identity(files[f"policies/{DAY}.csv"])
    assert [(r[1], r[2]) for r in quarantine(con, "policies")] == [(2, "BAD_DATE")]
    assert "start_date: '2024-02-30'" in quarantine(con, "policies")[0][3]


def test_future_date(hand_settings):
    write_claims(hand_settings.landing_dir, DAY, [claim_row(1, event_ts="2024-03-01 10:00:00"),
                                                  claim_row(2, event_ts=f"{DAY} 23:59:00")])
    _, files, con = ingest(hand_settings, "claim_events")
    assert_identity(files[f"claims/{DAY}.csv"])
    rows = quarantine(con, "claim_events")
    assert [(r[1], r[2]) for r in rows] == [(1, "FUTURE_DATE")]
    assert DAY in rows[0][3]


def test_duplicate_key_within_a_file_keeps_the_first(hand_settings):
    rows = [survey_row(1, score=5), survey_row(2), survey_row(1, score=1)]
    write_surveys(hand_settings.landing_dir, DAY, rows)
    _, files, con = ingest(hand_settings, "surveys")
    assert_identity(files[f"surveys/{DAY}.jsonl"])
    q = quarantine(con, "surveys")
    assert [(r[1], r[2]) for r in q] == [(3, "DUPLICATE_KEY")]
    assert "repeats line 1" in q[0][3]
    assert con.execute("SELECT score FROM raw.surveys WHERE response_id = 'R000000000001'").fetchall() == [(5,)]


def test_unknown_branch_code(hand_settings):
    write_calls(hand_settings.landing_dir, DAY, [call_row(1), call_row(2, branch_code="XX")])
    _, files, con = ingest(hand_settings, "call_logs")
    assert_identity(files[f"calls/{DAY}.csv"])
    q = quarantine(con, "call_logs")
    assert [(r[1], r[2]) for r in q] == [(2, "UNKNOWN_CODE")]
    assert "branch_code: 'XX'" in q[0][3]


def test_score_out_of_range(hand_settings):
    write_surveys(hand_settings.landing_dir, DAY, [survey_row(1, score=7), survey_row(2, nps=11), survey_row(3)])
    _, files, con = ingest(hand_settings, "surveys")
    assert_identity(files[f"surveys/{DAY}.jsonl"])
    q = quarantine(con, "surveys")
    assert [(r[1], r[2]) for r in q] == [(1, "OUT_OF_RANGE"), (2, "OUT_OF_RANGE")]
    assert q[0][3].startswith("score: '7' is outside [1, 5]")


def test_missing_key(hand_settings):
    write_policies(hand_settings.landing_dir, DAY, [policy_row(1, policy_no=""), policy_row(2)])
    _, files, con = ingest(hand_settings, "policies")
    assert_identity(files[f"policies/{DAY}.csv"])
    assert [(r[1], r[2], r[3]) for r in quarantine(con, "policies")] == [(1, "MISSING_KEY", "policy_no is missing")]


def test_pattern_mismatch(hand_settings):
    write_policies(hand_settings.landing_dir, DAY, [policy_row(1, phone="0431-1234567"), policy_row(2)])
    _, files, con = ingest(hand_settings, "policies")
    assert_identity(files[f"policies/{DAY}.csv"])
    assert [(r[1], r[2]) for r in quarantine(con, "policies")] == [(1, "BAD_FORMAT")]


def test_jsonl_line_that_is_not_json(hand_settings):
    path = write_surveys(hand_settings.landing_dir, DAY, [survey_row(1), survey_row(2)])
    text = path.read_text(encoding="utf-8")
    path.write_text(text + '{"response_id": "R000000000003", "score": \n', encoding="utf-8")
    _, files, con = ingest(hand_settings, "surveys")
    result = files[f"surveys/{DAY}.jsonl"]
    assert_identity(result)
    assert (result.rows_landed, result.rows_loaded) == (3, 2)
    assert [(r[1], r[2]) for r in quarantine(con, "surveys")] == [(3, "BAD_JSON")]


def test_bad_boolean_in_complaint(hand_settings):
    write_complaints(hand_settings.landing_dir, DAY, [complaint_row(1, is_duplicate="maybe"), complaint_row(2)])
    _, files, con = ingest(hand_settings, "complaints")
    assert_identity(files[f"complaints/{DAY}.json"])
    assert [(r[1], r[2]) for r in quarantine(con, "complaints")] == [(1, "BAD_BOOLEAN")]
    assert con.execute("SELECT complaint_no FROM raw.complaints").fetchall() == [("CPJL00000002",)]


def test_utf8_file_where_gbk_is_expected_fails_its_partition(hand_settings):
    write_calls(hand_settings.landing_dir, DAY, [call_row(1)], encoding="utf-8")
    write_calls(hand_settings.landing_dir, OTHER_DAY, [call_row(2, OTHER_DAY)])
    summary, files, con = ingest(hand_settings, "call_logs")
    bad = files[f"calls/{DAY}.csv"]
    assert bad.status == "failed"
    assert f"calls/{DAY}.csv" in bad.message and "UTF-8" in bad.message and "byte offset 0" in bad.message
    assert files[f"calls/{OTHER_DAY}.csv"].status == "loaded"
    assert con.execute("SELECT DISTINCT _partition FROM raw.call_logs").fetchall() == [(OTHER_DAY,)]
    ledger = con.execute("SELECT status, message FROM raw._ingest_ledger WHERE partition = ?", [DAY]).fetchall()
    assert ledger[0][0] == "failed" and "UTF-8" in ledger[0][1]


def test_invalid_gbk_bytes_quarantine_only_their_line(hand_settings):
    path = write_calls(hand_settings.landing_dir, DAY, [call_row(1), call_row(2), call_row(3)])
    data = path.read_bytes()
    offset = data.index(b"\n") + 10  # inside the first data line
    path.write_bytes(data[:offset] + b"\xff\xff" + data[offset:])
    _, files, con = ingest(hand_settings, "call_logs")
    result = files[f"calls/{DAY}.csv"]
    assert_identity(result)
    assert (result.rows_landed, result.rows_loaded, result.rows_quarantined) == (3, 2, 1)
    [(_, line, code, reason, raw_text)] = quarantine(con, "call_logs")
    assert (line, code) == (1, "BAD_ENCODING") and "GBK" in reason
    assert "\\xff\\xff" in raw_text  # the evidence keeps the bad bytes, escaped
    assert [r[0] for r in con.execute("SELECT call_id FROM raw.call_logs ORDER BY 1").fetchall()] == [
        "CA000000000002", "CA000000000003"]


def test_truncated_json_fails_its_partition(hand_settings):
    path = write_complaints(hand_settings.landing_dir, DAY, [complaint_row(1), complaint_row(2)])
    path.write_bytes(path.read_bytes()[:-40])
    write_complaints(hand_settings.landing_dir, OTHER_DAY, [complaint_row(3, OTHER_DAY)])
    _, files, con = ingest(hand_settings, "complaints")
    bad = files[f"complaints/{DAY}.json"]
    assert bad.status == "failed"
    assert bad.message.startswith(f"complaints/{DAY}.json: invalid or truncated JSON")
    assert files[f"complaints/{OTHER_DAY}.json"].status == "loaded"
    assert con.execute("SELECT complaint_no FROM raw.complaints").fetchall() == [("CPJL00000003",)]


def test_json_that_is_not_an_array_fails(hand_settings):
    path = hand_settings.landing_dir / "complaints" / f"{DAY}.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"complaint_no": "CPJL00000001"}', encoding="utf-8")
    _, files, _ = ingest(hand_settings, "complaints")
    assert files[f"complaints/{DAY}.json"].status == "failed"
    assert "expected a JSON array" in files[f"complaints/{DAY}.json"].message


def test_missing_required_column_fails_its_partition(hand_settings):
    path = write_claims(hand_settings.landing_dir, DAY, [claim_row(1)])
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    drop = lambda line: ",".join(v for i, v in enumerate(line.split(",")) if i != 1)  # noqa: E731  (claim_no)
    path.write_text("\n".join(drop(line) for line in lines) + "\n", encoding="utf-8-sig")
    write_claims(hand_settings.landing_dir, OTHER_DAY, [claim_row(2, OTHER_DAY)])
    _, files, con = ingest(hand_settings, "claim_events")
    bad = files[f"claims/{DAY}.csv"]
    assert bad.status == "failed"
    assert "missing required column(s) claim_no" in bad.message
    assert files[f"claims/{OTHER_DAY}.csv"].status == "loaded"


def test_empty_file_fails_its_partition(hand_settings):
    path = hand_settings.landing_dir / "policies" / f"{DAY}.csv"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    write_policies(hand_settings.landing_dir, OTHER_DAY, [policy_row(1, OTHER_DAY)])
    _, files, con = ingest(hand_settings, "policies")
    assert files[f"policies/{DAY}.csv"].status == "failed"
    assert files[f"policies/{DAY}.csv"].message == f"policies/{DAY}.csv: empty file (0 bytes, no header line)"
    assert files[f"policies/{DAY}.csv"].rows_loaded is None  # nothing of it in raw
    assert con.execute("SELECT count(*) FROM raw.policies").fetchall() == [(1,)]


def test_header_only_file_loads_zero_rows(hand_settings):
    write_policies(hand_settings.landing_dir, DAY, [])
    _, files, _ = ingest(hand_settings, "policies")
    result = files[f"policies/{DAY}.csv"]
    assert (result.status, result.rows_landed, result.rows_loaded) == ("loaded", 0, 0)


def test_xlsx_without_title_row_fails_its_partition(hand_settings):
    write_audits(hand_settings.landing_dir, "2024-01", [audit_row(1)], title=False)
    write_audits(hand_settings.landing_dir, "2024-02", [audit_row(2, day=date(2024, 2, 10))])
    _, files, con = ingest(hand_settings, "audits")
    bad = files["audits/2024-01.xlsx"]
    assert bad.status == "failed"
    assert "title row missing" in bad.message and "row 1" in bad.message
    assert files["audits/2024-02.xlsx"].status == "loaded"
    assert con.execute("SELECT audit_id, _source_line FROM raw.audits").fetchall() == [("AU00000002", 3)]


def test_damaged_xlsx_fails_its_partition(hand_settings):
    path = hand_settings.landing_dir / "audits" / "2024-01.xlsx"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 this is not a workbook")
    _, files, _ = ingest(hand_settings, "audits")
    assert files["audits/2024-01.xlsx"].status == "failed"
    assert "not a readable xlsx workbook" in files["audits/2024-01.xlsx"].message


def test_xlsx_value_errors_are_quarantined(hand_settings):
    write_audits(hand_settings.landing_dir, "2024-01", [
        audit_row(1), audit_row(2, assessment_score=140), audit_row(3, scenario="PHONE_PRANK"),
        audit_row(4, audit_date="someday"),
    ])
    _, files, con = ingest(hand_settings, "audits")
    assert_identity(files["audits/2024-01.xlsx"])
    assert [(r[1], r[2]) for r in quarantine(con, "audits")] == [
        (4, "OUT_OF_RANGE"), (5, "UNKNOWN_CODE"), (6, "BAD_DATE")]


@pytest.mark.parametrize("source", ["policies", "surveys"])
def test_a_failing_file_keeps_the_previous_load_of_its_partition(hand_settings, source):
    landing = hand_settings.landing_dir
    if source == "policies":
        path = write_policies(landing, DAY, [policy_row(1), policy_row(2)])
    else:
        path = write_surveys(landing, DAY, [survey_row(1), survey_row(2)])
    ingest_all_files(hand_settings, run_id="first", sources=[source])
    path.write_bytes(b"")  # a broken re-send
    _, files, con = ingest(hand_settings, source)
    result = files[path.relative_to(landing).as_posix()]
    assert result.status == "held_back"
    assert con.execute(f"SELECT count(*) FROM raw.{source}").fetchall() == [(2,)]
    message = result.message
    assert "the re-sent file has no records" in message and "declare-empty" in message
    assert f"partition {DAY} keeps the rows of the file loaded before" in message
    # the ledger row carries what raw still holds for the path, so the raw gates reconcile
    assert con.execute("SELECT status, message, rows_loaded FROM raw._ingest_ledger").fetchall() == [
        ("held_back", message, 2)]


def test_invalid_utf8_line_in_a_utf8_csv(hand_settings):
    path = write_policies(hand_settings.landing_dir, DAY, [policy_row(i) for i in range(1, 5)])
    path.write_bytes(path.read_bytes().replace("张三".encode(), b"\xff\xfe", 2).replace(b"\xff\xfe", "张三".encode(), 1))
    _, files, con = ingest(hand_settings, "policies")
    result = files[f"policies/{DAY}.csv"]
    assert_identity(result)
    assert (result.rows_landed, result.rows_quarantined) == (4, 1)
    assert [(r[1], r[2]) for r in quarantine(con, "policies")] == [(2, "BAD_ENCODING")]


def test_an_unterminated_quote_quarantines_only_its_line(hand_settings):
    path = write_policies(hand_settings.landing_dir, DAY, [policy_row(i) for i in range(1, 5)])
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[2] = lines[2].replace("张三", '"张三', 1)
    path.write_text("\n".join(lines), encoding="utf-8")
    _, files, con = ingest(hand_settings, "policies")
    result = files[f"policies/{DAY}.csv"]
    assert_identity(result)
    # physical accounting: 4 data lines landed, the stray quote costs only its own line
    assert (result.rows_landed, result.rows_loaded, result.rows_quarantined) == (4, 3, 1)
    [(_, line, code, reason, raw_text)] = quarantine(con, "policies")
    assert (line, code) == (2, "BAD_QUOTING") and "next line starts a new one" in reason
    assert raw_text == lines[2] and "张三" not in reason
    assert [r[0] for r in con.execute("SELECT policy_no FROM raw.policies ORDER BY 1").fetchall()] == [
        "PJL2024000001", "PJL2024000003", "PJL2024000004"]
