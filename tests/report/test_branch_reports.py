"""The branch pages on the tiny warehouse, through the monthly_snapshot job as `cs-warehouse snapshot`
runs it: every figure checked against values computed here, in SQL, from the published marts, and
against the company report's branch rows; the outbox holds one .eml per configured recipient."""

from __future__ import annotations

import email
import re
import statistics
from email import policy

import duckdb
import pytest

from dagster_project.cli.commands import run_snapshot_job
from dagster_project.lib.report.metrics import COMPANY

pytestmark = pytest.mark.slow
PERIOD = "2025-03"
MONTH = f"{PERIOD}-01"
STAGES = ("REPORT", "SURVEY", "ASSESSMENT", "PAYMENT", "COMPLAINT")


def _sql(settings, sql, params=()):
    with duckdb.connect(str(settings.published_db), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def _values(html: str) -> dict[tuple[str, str], float]:
    return {(m, b): float(v) for m, b, v in
            re.findall(r'data-metric="([^"]+)" data-branch="([^"]+)" data-value="([^"]+)"', html)}


@pytest.fixture()
def branch_run(built_settings, copy_settings):
    settings = copy_settings(built_settings, with_landing=False)
    # The branch with the most follow-up cases open past their deadline at month end, computed here.
    overdue = dict(_sql(settings, """
        SELECT branch_code, count(*) FROM marts.fct_followup_case
        WHERE opened_ts < ?::DATE + INTERVAL 1 MONTH
          AND (closed_ts IS NULL OR closed_ts >= ?::DATE + INTERVAL 1 MONTH)
          AND due_ts < ?::DATE + INTERVAL 1 MONTH
        GROUP BY ALL""", [MONTH] * 3))
    branch = max(sorted(overdue), key=lambda b: overdue[b])
    recipients = {f"CSWH_SMTP_TO_{branch}": "manager@branch.example, deputy@branch.example"}
    assert run_snapshot_job(settings.with_overrides(smtp=recipients), PERIOD) == 0
    return settings, branch, overdue


def test_branch_page_figures_equal_the_marts_and_the_company_report(branch_run):
    settings, branch, overdue = branch_run
    folder = settings.reports_dir / "snapshots" / "branches"
    branches = [b for (b,) in _sql(settings, "SELECT DISTINCT branch_code FROM marts.mart_stage_satisfaction "
                                             "WHERE month = ?::DATE ORDER BY 1", [MONTH])]
    assert sorted(p.name for p in folder.glob("*.html")) == sorted(f"kpi-{PERIOD}-{b}.html" for b in branches)
    page = (folder / f"kpi-{PERIOD}-{branch}.html").read_text(encoding="utf-8")
    shown = _values(page)
    company_report = _values((settings.reports_dir / "snapshots" / f"kpi-{PERIOD}.html").read_text(encoding="utf-8"))
    # what the company report recorded for every branch row (its CSV, marts.kpi_snapshots)
    recorded = {(m, b): v for b, m, v in _sql(settings, "SELECT branch_code, metric, value FROM marts.kpi_snapshots "
                                                      "WHERE period = ? AND revision = 1", [PERIOD])}

    cells = {(b, s): (n, x) for b, s, n, x in _sql(
        settings, "SELECT branch_code, stage, responses, satisfied FROM marts.mart_stage_satisfaction "
                  "WHERE month = ?::DATE", [MONTH])}
    for stage in STAGES:
        n, x = cells[(branch, stage)]
        assert shown[(f"csat.{stage}", branch)] == pytest.approx(x / n, abs=1e-12), stage
        company_n = sum(v[0] for (b, s), v in cells.items() if s == stage)
        company_x = sum(v[1] for (b, s), v in cells.items() if s == stage)
        assert shown[(f"csat.{stage}", COMPANY)] == pytest.approx(company_x / company_n, abs=1e-12), stage
        # the same figure as the company report's branch row
        assert shown[(f"csat.{stage}", branch)] == pytest.approx(recorded[(f"csat.{stage}", branch)], abs=1e-12)

    # rank and peer median of the survey-stage CSAT (higher is better; ties share the better rank)
    rates = {b: x / n for (b, s), (n, x) in cells.items() if s == "SURVEY" and n}
    own = rates[branch]
    rank = 1 + sum(1 for v in rates.values() if v > own)
    row = re.search(r'<tr>(?:(?!</tr>).)*data-metric="csat\.SURVEY" data-branch="' + branch + r'"(?:(?!</tr>).)*</tr>',
                    page, re.S).group(0)
    assert f">{rank} / {len(rates)}<" in row
    peers = statistics.median(v for b, v in rates.items() if b != branch)
    assert f"{peers * 100:.1f}%" in row

    [(received, valid)] = _sql(settings, "SELECT received, valid FROM marts.mart_complaints "
                                         "WHERE branch_code = ? AND month = ?::DATE", [branch, MONTH])
    if received:
        assert shown[("valid_complaint_rate", branch)] == pytest.approx(valid / received, abs=1e-12)
        assert shown[("valid_complaint_rate", branch)] == pytest.approx(recorded[("valid_complaint_rate", branch)])
        assert shown[("valid_complaint_rate", branch)] == pytest.approx(
            company_report[("valid_complaint_rate", branch)], abs=1e-12)

    # overdue cases: the count computed above, every case key on the page (oldest first, at most 50)
    assert overdue[branch] > 0
    assert f"month end: {overdue[branch]:,}</td>" in page
    keys = [k for (k,) in _sql(settings, """
        SELECT case_key FROM marts.fct_followup_case
        WHERE branch_code = ? AND opened_ts < ?::DATE + INTERVAL 1 MONTH
          AND (closed_ts IS NULL OR closed_ts >= ?::DATE + INTERVAL 1 MONTH)
          AND due_ts < ?::DATE + INTERVAL 1 MONTH
        ORDER BY opened_ts, case_key LIMIT 50""", [branch, MONTH, MONTH, MONTH])]
    assert keys and all(f">{k}<" in page for k in keys)

    # top comment topic of the branch, from the counts
    top = _sql(settings, """
        SELECT stage, topic_label_en, sum(mentions), sum(commented) FROM marts.mart_verbatim_topics
        WHERE branch_code = ? AND month = ?::DATE GROUP BY ALL HAVING sum(mentions) > 0
        ORDER BY sum(mentions) DESC, stage, any_value(topic_code) LIMIT 1""", [branch, MONTH])
    if top:
        _stage, label, mentions, commented = top[0]
        assert label in page and f"{mentions:,} / {commented:,}" in page


def test_branch_mail_goes_to_each_recipient_without_personal_data(branch_run, built_settings):
    settings, branch, _overdue = branch_run
    emls = sorted(settings.outbox_dir.glob(f"kpi-{PERIOD}-{branch}-*.eml"))
    assert [p.name.split("-", 5)[-1] for p in emls] == ["deputy_at_branch.example.eml",
                                                        "manager_at_branch.example.eml"]
    for path, to in zip(emls, ("deputy@branch.example", "manager@branch.example")):
        msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        assert msg["To"] == to and branch in msg["Subject"]
        html = msg.get_body(preferencelist=("html",)).get_content()
        images = [p for p in msg.walk() if p.get_content_type() == "image/png"]
        assert images and sorted(re.findall(r'src="cid:([^"]+)"', html)) == \
            sorted(p["Content-ID"].strip("<>") for p in images)
        assert "<style" not in html and "<svg" not in html
        assert [a.get_filename() for a in msg.iter_attachments()] == [f"kpi-{PERIOD}-{branch}.html",
                                                                       f"kpi-{PERIOD}-{branch}.csv"]
    # the branch's customers' names, phone and ID numbers appear nowhere in its mail
    with duckdb.connect(str(settings.work_db), read_only=True) as con:
        pii = [v for row in con.execute(
            "SELECT customer_name, phone, id_card_no FROM raw.policies WHERE branch_code = ? LIMIT 2000",
            [branch]).fetchall() for v in row if v and len(str(v)) >= 3]
    assert pii
    text = b"".join(p.read_bytes() for p in emls).decode("utf-8", "replace") + "".join(
        email.message_from_bytes(p.read_bytes(), policy=policy.default).get_body(("html",)).get_content() for p in emls)
    assert not [v for v in pii if str(v) in text]
    # the other branches have no recipient: their pages are written, nothing of theirs is mailed
    assert not [p for p in settings.outbox_dir.glob("*.eml") if f"-{branch}-" not in p.name
                and not re.fullmatch(rf"kpi-{PERIOD}-\d{{3}}\.eml", p.name)]
