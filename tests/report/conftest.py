"""A small published-like DuckDB file with the mart tables/columns the snapshot reads (the published
names), so the snapshot can be tested without running the pipeline; plus a stand-in for the
publish step that copies marts.kpi_snapshots from the work file into the published file."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb
import pytest

from dagster_project.lib.report import snapshot
from dagster_project.settings import Settings

EVIL = "<script>alert(1)</script>"
BRANCHES = ("JL", "SC", EVIL)
STAGES = ("REPORT", "SURVEY", "ASSESSMENT", "PAYMENT", "COMPLAINT")

# (month, branch) -> responses, satisfied per stage; chosen so SC's SURVEY drops sharply in June
# (significant) while JL changes by noise only.
SATISFACTION = {
    ("2024-05", "JL"): [(400, 368), (380, 334), (350, 280), (300, 258), (60, 36)],
    ("2024-05", "SC"): [(200, 184), (210, 185), (190, 152), (180, 155), (30, 18)],
    ("2024-05", EVIL): [(50, 45), (40, 34), (45, 36), (44, 38), (5, 3)],
    ("2024-06", "JL"): [(410, 376), (390, 341), (360, 290), (310, 266), (64, 39)],
    ("2024-06", "SC"): [(205, 188), (220, 140), (185, 149), (175, 150), (28, 16)],
    ("2024-06", EVIL): [(52, 47), (42, 35), (47, 38), (40, 35), (6, 3)],
}
# received, valid, policies in force, closed, p90 days, closed within deadline
COMPLAINTS = {
    ("2024-05", "JL"): (120, 50, 300_000, 110, 12.0, 104),
    ("2024-05", "SC"): (60, 30, 100_000, 55, 14.5, 50),
    ("2024-05", EVIL): (10, 4, 20_000, 9, 9.0, 9),
    ("2024-06", "JL"): (125, 52, 301_000, 118, 13.0, 110),
    ("2024-06", "SC"): (95, 44, 100_500, 80, 21.5, 62),
    ("2024-06", EVIL): (8, 3, 20_100, 10, 8.0, 10),
}
# due, renewed, baseline renewal rate
WINBACK = {
    ("2024-05", "JL"): (80, 50, 0.68), ("2024-05", "SC"): (40, 22, 0.66), ("2024-05", EVIL): (6, 4, 0.7),
    ("2024-06", "JL"): (82, 52, 0.68), ("2024-06", "SC"): (44, 20, 0.66), ("2024-06", EVIL): (5, 3, 0.7),
}
# offered, answered, abandoned, answered within 20 s
CALLS = {
    ("2024-05", "JL"): (9000, 8600, 400, 7600), ("2024-05", "SC"): (5000, 4700, 300, 4100),
    ("2024-05", EVIL): (800, 760, 40, 650),
    ("2024-06", "JL"): (9100, 8650, 450, 7650), ("2024-06", "SC"): (5100, 4650, 450, 3800),
    ("2024-06", EVIL): (820, 780, 40, 670),
}
SEGMENTS = {  # branch -> customers per segment (as of the last data day)
    "JL": {"QUALITY": 700, "HEALTHY": 200, "SUB_HEALTHY": 60, "HIGH_RISK": 40},
    "SC": {"QUALITY": 300, "HEALTHY": 120, "SUB_HEALTHY": 50, "HIGH_RISK": 30},
    EVIL: {"QUALITY": 50, "HEALTHY": 10, "SUB_HEALTHY": 3, "HIGH_RISK": 2},
}
WATCHLIST = {"JL": 7, "SC": 5, EVIL: 1}


def _wilson(x, n, z=1.96):
    from dagster_project.lib.report.metrics import wilson_interval

    return wilson_interval(x, n, z)


def build_published_like(path: Path, satisfaction=SATISFACTION) -> None:
    """Write the mart tables the snapshot reads into a DuckDB file at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA marts")
    con.execute("""CREATE TABLE marts.mart_stage_satisfaction (branch_code VARCHAR, stage VARCHAR, month DATE,
        responses BIGINT, satisfied BIGINT, csat DOUBLE, wilson_low DOUBLE, wilson_high DOUBLE,
        csat_shrunk DOUBLE, company_csat DOUBLE, low_sample BOOLEAN, significantly_below BOOLEAN)""")
    for (period, branch), cells in satisfaction.items():
        for stage, (n, x) in zip(STAGES, cells):
            company_n = sum(satisfaction[(period, b)][STAGES.index(stage)][0] for b in BRANCHES)
            company_x = sum(satisfaction[(period, b)][STAGES.index(stage)][1] for b in BRANCHES)
            low, high = _wilson(x, n)
            company = company_x / company_n
            shrunk = (x + 20 * company) / (n + 20)
            con.execute("INSERT INTO marts.mart_stage_satisfaction VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [branch, stage, f"{period}-01", n, x, x / n, low, high, shrunk, company, n < 100,
                         high < company])
    con.execute("""CREATE TABLE marts.mart_complaints (branch_code VARCHAR, month DATE, received BIGINT,
        accepted BIGINT, valid BIGINT, valid_rate DOUBLE, policies_in_force BIGINT, per_10k_policies DOUBLE,
        closed BIGINT, handling_days_p50 DOUBLE, handling_days_p90 DOUBLE, closed_within_deadline BIGINT,
        within_deadline_share DOUBLE)""")
    for (period, branch), (rec, valid, pif, closed, p90, within) in COMPLAINTS.items():
        con.execute("INSERT INTO marts.mart_complaints VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [branch, f"{period}-01", rec, rec, valid, valid / rec, pif, rec * 10000.0 / pif,
                     closed, p90 / 2, p90, within, within / closed])
    con.execute("""CREATE TABLE marts.mart_winback (branch_code VARCHAR, month DATE, due_for_renewal BIGINT,
        renewed BIGINT, winback_rate DOUBLE, baseline_renewal_rate DOUBLE, renewal_lift DOUBLE)""")
    for (period, branch), (due, renewed, base) in WINBACK.items():
        con.execute("INSERT INTO marts.mart_winback VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [branch, f"{period}-01", due, renewed, renewed / due, base, renewed / due / base])
    con.execute("""CREATE TABLE marts.mart_call_center_monthly (branch_code VARCHAR, month DATE, offered BIGINT,
        answered BIGINT, abandoned BIGINT, answered_within_20s BIGINT, manual_answer_rate DOUBLE,
        service_level_20s DOUBLE, abandon_rate DOUBLE)""")
    for (period, branch), (off, ans, aband, sl) in CALLS.items():
        con.execute("INSERT INTO marts.mart_call_center_monthly VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [branch, f"{period}-01", off, ans, aband, sl, ans / off, sl / off, aband / off])
    con.execute("""CREATE TABLE marts.mart_claim_cycle (branch_code VARCHAR, month DATE, claims_reported BIGINT,
        claims_closed BIGINT, rolling_claims_base BIGINT, rolling_claims_closed BIGINT, closure_rate DOUBLE)""")
    for (period, branch) in CALLS:
        base, closed = (1000, 930) if branch == "JL" else (500, 455)
        con.execute("INSERT INTO marts.mart_claim_cycle VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [branch, f"{period}-01", 100, 90, base, closed, closed / base])
    con.execute("""CREATE TABLE marts.mart_segment_summary (branch_code VARCHAR, line VARCHAR, segment VARCHAR,
        value_tier VARCHAR, customers BIGINT)""")
    for branch, counts in SEGMENTS.items():
        for segment, customers in counts.items():
            # split over two lines and tiers so the snapshot has to add them up
            con.execute("INSERT INTO marts.mart_segment_summary VALUES (?, 'MOTOR', ?, 'LOW', ?), "
                        "(?, 'HOME', ?, 'HIGH', ?)",
                        [branch, segment, customers - customers // 3, branch, segment, customers // 3])
    con.execute("CREATE TABLE marts.mart_underwriting_watchlist (policy_no VARCHAR, customer_key VARCHAR, "
                "branch_code VARCHAR)")
    for branch, count in WATCHLIST.items():
        for i in range(count):
            con.execute("INSERT INTO marts.mart_underwriting_watchlist VALUES (?, ?, ?), (?, ?, ?)",
                        # a customer with two policies due appears twice: counted once
                        [f"P{branch}{i}a", f"K{branch}{i}", branch, f"P{branch}{i}b", f"K{branch}{i}", branch])
    con.close()


def fake_publish(settings, run_id, revision) -> str:
    """Stand-in for publish.publish in unit tests: copy the history into a copy of the published
    file and swap it in atomically (the real publish also re-copies the marts and audits)."""
    candidate = settings.published_db.with_suffix(".candidate")
    shutil.copyfile(settings.published_db, candidate)
    con = duckdb.connect(str(candidate))
    try:
        con.execute(f"ATTACH '{settings.work_db}' AS work (READ_ONLY)")
        con.execute("CREATE OR REPLACE TABLE marts.kpi_snapshots AS SELECT * FROM work.marts.kpi_snapshots")
    finally:
        con.close()
    os.replace(candidate, settings.published_db)
    fake_publish.calls.append((run_id, revision.period, revision.revision))
    return "published (test stand-in)"


def make_settings(root: Path) -> Settings:
    return Settings(landing_dir=root / "landing", warehouse_dir=root / "warehouse",
                    reports_dir=root / "reports", outbox_dir=root / "outbox",
                    dagster_home=root / "dagster_home", pii_salt="test-salt-not-secret")


@pytest.fixture()
def snap_settings(tmp_path, monkeypatch):
    settings = make_settings(tmp_path)
    for folder in (settings.warehouse_dir, settings.reports_dir, settings.outbox_dir):
        folder.mkdir(parents=True, exist_ok=True)
    build_published_like(settings.published_db)
    fake_publish.calls = []
    monkeypatch.setattr(snapshot, "_publish", fake_publish)
    return settings


def change_published(settings, sql: str, params=()) -> None:
    """Simulate the daily pipeline publishing late data: edit the published marts."""
    con = duckdb.connect(str(settings.published_db))
    try:
        con.execute(sql, list(params))
    finally:
        con.close()
