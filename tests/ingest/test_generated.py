"""Ingest of the generated tiny data set (session fixtures): counts recomputed independently from
the landing files with Python's own parsers, GBK text, re-runs, re-sent days and complaint states."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from dagster_project.lib.ingest import CONTRACTS, call_logs
from dagster_project.lib.ingest.landing import candidate_paths
from dagster_project.lib.ingest.loader import SOURCES, ingest_all_files


def records_in_file(source: str, path: Path) -> int:
    """Data records in a landing file, counted without DuckDB."""
    contract = CONTRACTS[source]
    if contract.file_format == "csv":
        text = path.read_bytes().decode("gbk" if contract.encoding == "gbk" else "utf-8-sig")
        return sum(1 for row in csv.reader(io.StringIO(text)) if row) - 1
    if contract.file_format == "jsonl":
        return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    if contract.file_format == "json_array":
        return len(json.loads(path.read_text(encoding="utf-8")))
    from openpyxl import load_workbook

    wb = load_workbook(path, read_only=True)
    rows = [r for r in wb.worksheets[0].iter_rows(values_only=True) if any(v is not None for v in r)]
    wb.close()
    return len(rows) - 2  # title row and header


@pytest.fixture(scope="module")
def landed(ingested_settings) -> dict[str, dict[str, int]]:
    """source -> {relative path: records} for every landing file."""
    landing = ingested_settings.landing_dir
    return {
        source: {p.relative_to(landing).as_posix(): records_in_file(source, p)
                 for _, p in candidate_paths(landing, CONTRACTS[source])}
        for source in SOURCES
    }


@pytest.fixture()
def work(ingested_settings):
    con = duckdb.connect(str(ingested_settings.work_db), read_only=True)
    yield con
    con.close()


def test_every_file_is_in_the_ledger_with_landed_equal_loaded_plus_quarantined(landed, work):
    ledger = {
        path: (source, status, rows_landed, rows_loaded, rows_quarantined)
        for source, path, status, rows_landed, rows_loaded, rows_quarantined in work.execute(
            "SELECT source, path, status, rows_landed, rows_loaded, rows_quarantined FROM raw._ingest_ledger"
        ).fetchall()
    }
    expected_files = {path for files in landed.values() for path in files}
    assert set(ledger) == expected_files
    assert len(expected_files) > 2000
    for source, files in landed.items():
        for path, records in files.items():
            got_source, status, rows_landed, rows_loaded, rows_quarantined = ledger[path]
            assert (got_source, status) == (source, "loaded"), path
            assert rows_landed == records, path
            assert rows_landed == rows_loaded + rows_quarantined, path


def test_raw_rows_equal_file_rows_minus_quarantined(landed, work):
    for source in SOURCES:
        table = "raw.complaints_history" if source == "complaints" else f"raw.{source}"
        loaded = work.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
        quarantined = work.execute(f"SELECT count(*) FROM raw.quarantine_{source}").fetchall()[0][0]
        assert loaded == sum(landed[source].values()) - quarantined, source
        assert loaded > 0, source
        # a clean generated set should load (almost) entirely
        assert quarantined <= 0.001 * loaded, (source, quarantined)


def test_per_file_counts_in_raw_match_the_ledger(work):
    mismatches = work.execute(
        """SELECT l.path, l.rows_loaded, count(r._source_file) AS in_raw
        FROM raw._ingest_ledger l LEFT JOIN raw.policies r ON r._source_file = l.path
        WHERE l.source = 'policies' GROUP BY ALL HAVING l.rows_loaded <> count(r._source_file)"""
    ).fetchall()
    assert mismatches == []


def test_chinese_text_from_gbk_call_logs_survives(ingested_settings, work):
    landing = ingested_settings.landing_dir
    checked = 0
    for _, path in candidate_paths(landing, CONTRACTS["call_logs"])[::50]:
        rel = path.relative_to(landing).as_posix()
        reader = csv.reader(io.StringIO(path.read_bytes().decode("gbk")))
        header = [call_logs.HEADER_MAP[h] for h in next(reader)]
        expected = [dict(zip(header, row)) for row in reader if row]
        got = work.execute(
            "SELECT direction, call_type, abandoned, coalesce(outcome, '') FROM raw.call_logs "
            "WHERE _source_file = ? ORDER BY _source_line", [rel]).fetchall()
        assert got == [(e["direction"], e["call_type"], e["abandoned"], e["outcome"]) for e in expected], rel
        checked += len(got)
    assert checked > 100
    values = Counter(v for (v,) in work.execute("SELECT call_type FROM raw.call_logs").fetchall())
    assert set(values) <= set(call_logs.CALL_TYPES) and values["报案"] > 0 and values["回访"] > 0


def test_chinese_names_and_comments_survive_utf8(ingested_settings, work):
    landing = ingested_settings.landing_dir
    _, path = candidate_paths(landing, CONTRACTS["policies"])[100]
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    got = work.execute("SELECT customer_name FROM raw.policies WHERE _source_file = ? ORDER BY _source_line",
                       [path.relative_to(landing).as_posix()]).fetchall()
    assert [g[0] for g in got] == [r["customer_name"] or None for r in rows]
    assert any("\u4e00" <= ch <= "\u9fff" for (name,) in got for ch in (name or ""))


def test_complaints_hold_the_latest_state_per_ticket(work):
    assert work.execute(
        "SELECT count(*), count(DISTINCT complaint_no) FROM raw.complaints").fetchall() == work.execute(
        "SELECT count(DISTINCT complaint_no), count(DISTINCT complaint_no) FROM raw.complaints_history").fetchall()
    stale = work.execute(
        """SELECT c.complaint_no FROM raw.complaints c
        JOIN (SELECT complaint_no, max(updated_ts) AS latest FROM raw.complaints_history GROUP BY 1) h
        USING (complaint_no) WHERE c.updated_ts <> h.latest"""
    ).fetchall()
    assert stale == []


def test_rerun_adds_nothing(ingested_settings, copy_settings):
    settings = copy_settings(ingested_settings, with_landing=False)

    def snapshot():
        con = duckdb.connect(str(settings.work_db), read_only=True)
        try:
            tables = [*SOURCES, "complaints_history", *(f"quarantine_{s}" for s in SOURCES)]
            counts = {t: con.execute(f"SELECT count(*) FROM raw.{t}").fetchall()[0][0] for t in tables}
            ledger = con.execute("SELECT * FROM raw._ingest_ledger ORDER BY source, path").fetchall()
            return counts, ledger
        finally:
            con.close()

    before = snapshot()
    summary = ingest_all_files(settings, run_id="rerun")
    assert {f.status for f in summary.files} == {"skipped"}
    assert summary.rows_loaded == 0
    assert snapshot() == before


def test_editing_one_day_replaces_exactly_that_day(ingested_settings, copy_settings):
    settings = copy_settings(ingested_settings)
    day = "2024-06-03"
    path = settings.landing_dir / "claims" / f"{day}.csv"
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    assert len(lines) > 3
    header, first, *rest = lines
    kept = [header] + rest[:-1]  # drop the first and the last event of the day
    path.write_text("\n".join(kept) + "\n", encoding="utf-8-sig")

    def fingerprint(con, where):
        return con.execute(
            f"SELECT count(*), sum(hash(event_id, amount, event_ts, _source_line)) FROM raw.claim_events WHERE {where}"
        ).fetchall()[0]

    con = duckdb.connect(str(settings.work_db), read_only=True)
    others_before = fingerprint(con, f"_partition <> '{day}'")
    con.close()

    summary = ingest_all_files(settings, run_id="resend")
    loaded = [f for f in summary.files if f.status == "loaded"]
    assert [(f.path, f.rows_loaded) for f in loaded] == [(f"claims/{day}.csv", len(kept) - 1)]

    con = duckdb.connect(str(settings.work_db), read_only=True)
    assert fingerprint(con, f"_partition <> '{day}'") == others_before
    assert con.execute(f"SELECT count(*), min(_run_id), max(_run_id) FROM raw.claim_events WHERE _partition = '{day}'"
                       ).fetchall() == [(len(kept) - 1, "resend", "resend")]
    first_event = first.split(",")[0]
    assert con.execute("SELECT count(*) FROM raw.claim_events WHERE event_id = ?", [first_event]).fetchall() == [(0,)]
    con.close()
