"""The monthly report's closing-the-loop section: overdue share, first-contact resolution and the
complaint index per branch, the recovery of followed-up detractors, and the follow-up cases open past
their deadline at month end, per branch (case key, reason, age; no personal data).

First on a small published-like file with known cases (every number checked by hand), then end to
end on the tiny pipeline's real marts, where the listed cases must be the marts' own."""

from __future__ import annotations

import re

import duckdb
import pytest

from dagster_project.lib.report.metrics import COMPANY
from dagster_project.lib.report.snapshot import run_snapshot

from .conftest import EVIL  # the published-like file's hostile branch code

PHONE_OR_ID = re.compile(r"(?<![0-9])(1[3-9][0-9]{9}|[0-9]{17}[0-9Xx])(?![0-9])")

CASES = [
    # case_key, reason, branch, stage, opened, due, closed, escalated_level_2_ts
    ("DETRACTOR:R1", "DETRACTOR", "JL", "SURVEY", "2024-06-20 10:00:00", "2024-06-21 15:00:00", None, "2024-06-24 15:00:00"),
    ("COMPLAINT:CPJL24000001", "COMPLAINT", "JL", None, "2024-06-29 10:00:00", "2024-07-01 10:00:00", None, None),
    ("DETRACTOR:R2", "DETRACTOR", "JL", "REPORT", "2024-06-01 10:00:00", "2024-06-03 10:00:00", "2024-06-10 10:00:00", "2024-06-04 10:00:00"),
    ("DETRACTOR:R3", "DETRACTOR", "SC", "PAYMENT", "2024-05-10 09:00:00", "2024-05-13 12:00:00", "2024-07-05 10:00:00", "2024-05-14 12:00:00"),
    ("DETRACTOR:R4", "DETRACTOR", EVIL, "REPORT", "2024-06-25 08:00:00", "2024-06-26 17:00:00", None, "2024-07-03 09:00:00"),
]
# branch, month: overdue, decided, followed (next satisfied/responses, renewed/due), not followed (same)
FOLLOWUP = {
    ("JL", "2024-05"): (2, 20, (30, 35, 40, 60), (4, 8, 3, 10)),
    ("JL", "2024-06"): (3, 20, (31, 35, 41, 60), (3, 7, 4, 10)),
    ("SC", "2024-05"): (5, 10, (10, 12, 20, 30), (2, 6, 2, 8)),
    ("SC", "2024-06"): (6, 12, (11, 12, 21, 30), (3, 6, 3, 8)),
    (EVIL, "2024-05"): (0, 2, (1, 1, 1, 2), (0, 0, 0, 0)),
    (EVIL, "2024-06"): (1, 2, (1, 1, 1, 2), (0, 1, 0, 1)),
}
# branch, month: first contacts, contacts, complaint index
SCORECARD = {("JL", "2024-05"): (800, 1000, 0.9), ("JL", "2024-06"): (780, 1000, 0.95),
             ("SC", "2024-05"): (400, 500, 1.2), ("SC", "2024-06"): (360, 500, 1.3),
             (EVIL, "2024-05"): (90, 100, 0.5), (EVIL, "2024-06"): (95, 100, 0.6)}


def add_closing_loop_marts(path) -> None:
    con = duckdb.connect(str(path))
    try:
        con.execute("""CREATE TABLE marts.fct_followup_case (case_key VARCHAR, reason VARCHAR, branch_code VARCHAR,
            stage VARCHAR, opened_ts TIMESTAMP, due_ts TIMESTAMP, closed_ts TIMESTAMP, escalated_level_2_ts TIMESTAMP)""")
        con.executemany("INSERT INTO marts.fct_followup_case VALUES (?, ?, ?, ?, ?, ?, ?, ?)", CASES)
        con.execute("""CREATE TABLE marts.mart_followup (branch_code VARCHAR, month DATE, overdue BIGINT,
            cases_decided BIGINT, overdue_share DOUBLE, followed_up_next_satisfied BIGINT, followed_up_next_responses BIGINT,
            followed_up_renewed BIGINT, followed_up_renewal_due BIGINT, not_followed_up_next_satisfied BIGINT,
            not_followed_up_next_responses BIGINT, not_followed_up_renewed BIGINT, not_followed_up_renewal_due BIGINT)""")
        for (branch, month), (overdue, decided, followed, left) in FOLLOWUP.items():
            con.execute("INSERT INTO marts.mart_followup VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [branch, f"{month}-01", overdue, decided, overdue / decided, *followed, *left])
        con.execute("""CREATE TABLE marts.mart_branch_scorecard (branch_code VARCHAR, month DATE, first_contacts BIGINT,
            inbound_contacts BIGINT, first_contact_resolution DOUBLE, complaint_index DOUBLE)""")
        for (branch, month), (first, contacts, index) in SCORECARD.items():
            con.execute("INSERT INTO marts.mart_branch_scorecard VALUES (?, ?, ?, ?, ?, ?)",
                        [branch, f"{month}-01", first, contacts, first / contacts, index])
    finally:
        con.close()


@pytest.fixture()
def loop_settings(snap_settings):
    add_closing_loop_marts(snap_settings.published_db)
    return snap_settings


def _history(settings, period, db=None):
    with duckdb.connect(str(db or settings.published_db), read_only=True) as con:
        return {(b, m): (v, n, d) for b, m, v, n, d in con.execute(
            "SELECT branch_code, metric, value, numerator, denominator FROM marts.kpi_snapshots "
            "WHERE period = ? AND revision = 1", [period]).fetchall()}


def test_history_holds_overdue_share_fcr_and_the_complaint_index(loop_settings):
    run_snapshot(loop_settings, "2024-06", env={})
    history = _history(loop_settings, "2024-06")
    assert history[(COMPANY, "followup_overdue_share")] == (10 / 34, 10, 34)  # pooled: 3 + 6 + 1 of 20 + 12 + 2
    assert history[("SC", "followup_overdue_share")] == (0.5, 6, 12)
    assert history[(COMPANY, "first_contact_resolution")] == (1235 / 1600, 1235, 1600)
    assert history[("JL", "complaint_index")][0] == 0.95
    assert (COMPANY, "complaint_index") not in history  # 1 by definition: never summed


def test_the_section_lists_the_cases_open_past_their_deadline_per_branch(loop_settings):
    result = run_snapshot(loop_settings, "2024-06", env={})
    html = result.html_path.read_text(encoding="utf-8")
    section = html[html.index("7. 闭环管理 Closing the loop"):]
    # open at the end of 30 June and past due then: R1 (JL), R3 (SC, closed only on 5 July), R4 (the hostile
    # branch); not the complaint due on 1 July, not R2 closed on 10 June
    listed = re.findall(r"<tr><th>((?:DETRACTOR|COMPLAINT):[^<]+)</th>", section)
    assert sorted(listed) == ["DETRACTOR:R1", "DETRACTOR:R3", "DETRACTOR:R4"]
    assert "cases open past their deadline at month end: 3" in section
    row = lambda key: section[section.index(f"<th>{key}</th>"):].split("</tr>")[0]  # noqa: E731
    # ages at the end of the month: 10 d 14 h and 51 d 15 h; R3 and R1 reached level 2 before it, R4 did not
    assert "<td>10.6</td><td>2</td>" in row("DETRACTOR:R1")
    assert "<td>51.6</td><td>2</td>" in row("DETRACTOR:R3")
    assert "<td>1</td>" in row("DETRACTOR:R4")
    assert "查勘 On-site survey" in row("DETRACTOR:R1") and "差评 Detractor" in row("DETRACTOR:R1")
    # the branch name of the hostile fixture stays text
    assert EVIL not in html and "&lt;script&gt;" in section
    # the recovery of detractors over the 12 months to June, both groups with counts and intervals
    assert "87.5% (84/96" in section and "42.9% (12/28" in section  # next survey satisfied, May and June
    assert "followup_overdue_share" in section and "first_contact_resolution" in section
    assert not PHONE_OR_ID.search(section)


def test_headline_names_the_overdue_share_and_the_open_overdue_cases(loop_settings):
    result = run_snapshot(loop_settings, "2024-06", env={})
    html = result.html_path.read_text(encoding="utf-8")
    headline = html[html.index("要点 Headline"):html.index("</ul>")]
    assert "回访 Follow-up" in headline and "3 cases are open past it at month end" in headline
    assert "n = 34" in headline and "n = 1,600" in headline


@pytest.mark.slow
def test_on_the_real_marts_the_listed_cases_are_the_overdue_backlog_of_the_month(built_settings, copy_settings):
    settings = copy_settings(built_settings, with_landing=False)  # published by the session's pipeline run
    assert settings.published_db.exists()
    period = "2025-03"
    # the report as the snapshot renders it (its republish of the history is the monthly job's step)
    result = run_snapshot(settings, period, env={})
    assert result.missing == () and result.html_path.exists()
    html = result.html_path.read_text(encoding="utf-8")
    section = html[html.index("7. 闭环管理 Closing the loop"):]
    with duckdb.connect(str(settings.published_db), read_only=True) as con:
        expected = {k for (k,) in con.execute("""
            select case_key from marts.fct_followup_case
            where opened_ts < timestamp '2025-04-01' and (closed_ts is null or closed_ts >= timestamp '2025-04-01')
              and due_ts < timestamp '2025-04-01'""").fetchall()}
        backlog, per_branch = con.execute("""
            select sum(overdue_at_month_end), max(overdue_at_month_end) from marts.mart_followup
            where month = date '2025-03-01'""").fetchone()
    assert len(expected) == backlog > 0  # the list is the mart's overdue backlog at month end
    assert f"at month end: {backlog:,}" in section
    listed = set(re.findall(r"<tr><th>((?:DETRACTOR|COMPLAINT):[^<]+)</th>", section))
    assert listed <= expected and len(listed) >= min(backlog, 20)
    assert not PHONE_OR_ID.search(section)
    shown = {(m, b): float(v) for m, b, v in
             re.findall(r'data-metric="([^"]+)" data-branch="([^"]+)" data-value="([^"]+)"', html)}
    history = _history(settings, period, settings.work_db)  # the authoritative history, before the job republishes it
    for metric in ("followup_overdue_share", "first_contact_resolution"):
        assert shown[(metric, COMPANY)] == pytest.approx(history[(COMPANY, metric)][0], abs=1e-12), metric
