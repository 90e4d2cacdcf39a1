"""Physical accounting (docs/ingest.md): every line of a landing file is one record's line,
loaded or quarantined — a stray quote costs only its own line, a quoted line break stays valid,
odd line endings are normalized — and an empty re-send or a mostly bad file holds back only its
partition, keeping the earlier load."""

from __future__ import annotations

from datetime import date

import duckdb
from ingest_helpers import (
    call_row, policy_row, survey_row, write_calls, write_policies, write_surveys,
)

from dagster_project.lib.ingest.loader import (
    QUARANTINE_MIN_ROWS, declare_empty, ingest_all_files, stale_partitions,
)

DAY = "2024-01-05"
TODAY = date(2024, 3, 1)


def run(settings, source):
    summary = ingest_all_files(settings, run_id="acct", sources=[source], today=TODAY)
    return {f.path: f for f in summary.files}


def rows(settings, sql):
    with duckdb.connect(str(settings.work_db), read_only=True) as con:
        return con.execute(sql).fetchall()


def physical_data_lines(path) -> int:
    data = path.read_bytes().replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return len([line for line in data.split(b"\n")[1:] if line])


def test_thirty_two_clean_rows_after_a_stray_quote_all_load(hand_settings):
    path = write_policies(hand_settings.landing_dir, DAY, [policy_row(i) for i in range(1, 38)])
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[5] = lines[5].replace("张三", '"张三', 1)  # data line 5
    path.write_text("\n".join(lines), encoding="utf-8")
    result = run(hand_settings, "policies")[f"policies/{DAY}.csv"]
    assert (result.rows_landed, result.rows_loaded, result.rows_quarantined) == (37, 36, 1)
    assert result.rows_landed == physical_data_lines(path)
    assert rows(hand_settings, "SELECT _source_line, reason_code FROM raw.quarantine_policies") == [(5, "BAD_QUOTING")]


def test_a_quoted_line_break_is_one_valid_record(hand_settings):
    path = write_policies(hand_settings.landing_dir, DAY, [policy_row(1), policy_row(2, customer_name="张\n三"),
                                                            policy_row(3)])
    result = run(hand_settings, "policies")[f"policies/{DAY}.csv"]
    assert (result.rows_landed, result.rows_loaded, result.rows_quarantined, result.message) == (3, 3, 0, None)
    assert physical_data_lines(path) == 4  # four lines, three records: the break is inside a field
    assert rows(hand_settings, "SELECT customer_name, _source_line FROM raw.policies ORDER BY 2") == [
        ("张三", 1), ("张\n三", 2), ("张三", 4)]


def test_lone_cr_and_mixed_line_endings_are_normalized_and_every_line_counts(hand_settings):
    lone = write_policies(hand_settings.landing_dir, DAY, [policy_row(i) for i in range(1, 4)])
    lone.write_bytes(lone.read_bytes().replace(b"\n", b"\r"))
    mixed = write_policies(hand_settings.landing_dir, "2024-01-06", [policy_row(i, "2024-01-06") for i in range(4, 8)])
    mixed.write_bytes(mixed.read_bytes().replace(b"\n", b"\r\n", 2))
    files = run(hand_settings, "policies")
    assert (files[f"policies/{DAY}.csv"].rows_loaded, files["policies/2024-01-06.csv"].rows_loaded) == (3, 4)
    assert "lone CR line endings" in files[f"policies/{DAY}.csv"].message
    assert "mixed line endings (LF, CRLF)" in files["policies/2024-01-06.csv"].message or \
        "mixed line endings (CRLF, LF)" in files["policies/2024-01-06.csv"].message


def test_the_careful_path_gives_the_same_rows_as_the_fast_path(hand_settings):
    day2 = "2024-01-06"
    fast = write_policies(hand_settings.landing_dir, DAY, [policy_row(i) for i in range(1, 6)])
    careful = write_policies(hand_settings.landing_dir, day2, [policy_row(i, day2) for i in range(1, 6)])
    careful.write_bytes(careful.read_bytes().replace(b"\n", b"\r"))  # forces the line-based reader
    run(hand_settings, "policies")
    a = rows(hand_settings, f"SELECT * EXCLUDE (_source_file, _partition, _ingested_at, _run_id) FROM raw.policies "
                            f"WHERE _partition = '{DAY}' ORDER BY _source_line")
    b = rows(hand_settings, f"SELECT * EXCLUDE (_source_file, _partition, _ingested_at, _run_id) FROM raw.policies "
                            f"WHERE _partition = '{day2}' ORDER BY _source_line")
    assert len(a) == 5 and [r[:11] for r in a] == [r[:11] for r in b]


def test_a_jsonl_file_with_an_invalid_utf8_line_quarantines_that_line(hand_settings):
    path = write_surveys(hand_settings.landing_dir, DAY, [survey_row(i) for i in range(1, 4)])
    lines = path.read_bytes().split(b"\n")
    lines[1] = lines[1].replace("满意".encode(), b"\xff\xfe")
    path.write_bytes(b"\n".join(lines))
    result = run(hand_settings, "surveys")[f"surveys/{DAY}.jsonl"]
    assert (result.rows_landed, result.rows_loaded, result.rows_quarantined) == (3, 2, 1)
    assert rows(hand_settings, "SELECT _source_line, reason_code FROM raw.quarantine_surveys") == [(2, "BAD_ENCODING")]


def test_an_empty_resend_is_held_back_until_the_day_is_declared_empty(hand_settings):
    path = write_policies(hand_settings.landing_dir, DAY, [policy_row(1), policy_row(2)])
    run(hand_settings, "policies")
    for resend in (b"", b"\n", path.read_bytes().split(b"\n")[0] + b"\n"):  # 0 bytes, 1 byte, header only
        path.write_bytes(resend)
        result = run(hand_settings, "policies")[f"policies/{DAY}.csv"]
        assert result.status == "held_back", resend
        assert "the re-sent file has no records" in result.message
        assert rows(hand_settings, "SELECT count(*) FROM raw.policies") == [(2,)]
    [stale] = stale_partitions(hand_settings.work_db)
    assert (stale["source"], stale["partition"], stale["status"]) == ("policies", DAY, "held_back")
    message = declare_empty(hand_settings, "policies", DAY, "no policies were issued that day (branch closed)",
                            declared_by="ops", today=TODAY)
    assert "declared empty" in message
    result = run(hand_settings, "policies")[f"policies/{DAY}.csv"]
    assert (result.status, result.rows_loaded) == ("loaded", 0) and "declared empty" in result.message
    assert rows(hand_settings, "SELECT count(*) FROM raw.policies") == [(0,)]
    assert rows(hand_settings, "SELECT declared_by, reason FROM raw._declared_empty") == [
        ("ops", "no policies were issued that day (branch closed)")]
    assert stale_partitions(hand_settings.work_db) == []


def test_a_mostly_bad_file_is_held_back_and_a_small_bad_day_is_a_warning(hand_settings):
    good = [call_row(i) for i in range(1, 21)]
    write_calls(hand_settings.landing_dir, DAY, good)
    run(hand_settings, "call_logs")
    bad = [call_row(i, wrap_up_seconds="0x1F") for i in range(1, QUARANTINE_MIN_ROWS + 1)] + good[QUARANTINE_MIN_ROWS:]
    write_calls(hand_settings.landing_dir, DAY, bad)
    small = [call_row(100 + i, "2024-01-06") for i in range(10)]
    small[3]["wrap_up_seconds"] = "3.5"
    write_calls(hand_settings.landing_dir, "2024-01-06", small)
    files = run(hand_settings, "call_logs")
    held = files[f"calls/{DAY}.csv"]
    assert held.status == "held_back" and f"{QUARANTINE_MIN_ROWS} of 20 record(s) quarantined" in held.message
    assert held.rows_loaded == 20  # what raw keeps: the earlier load
    warned = files["calls/2024-01-06.csv"]
    assert (warned.status, warned.rows_loaded, warned.rows_quarantined) == ("loaded", 9, 1)
    assert "warning: 1 of 10 record(s) quarantined" in warned.message
    assert rows(hand_settings, "SELECT count(*) FROM raw.call_logs WHERE _partition = '2024-01-05'") == [(20,)]
