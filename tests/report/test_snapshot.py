"""The snapshot on a small published-like file: history rows, revisions, report content, CSV."""

from __future__ import annotations

import csv
import io
import re
from datetime import date

import duckdb
import pytest

from dagster_project.lib.report import snapshot
from dagster_project.lib.report.metrics import COMPANY
from dagster_project.lib.report.snapshot import SnapshotError, run_snapshot

from .conftest import COMPLAINTS, EVIL, SATISFACTION, STAGES, WINBACK, change_published, fake_publish


def _history(settings, db="work"):
    path = settings.work_db if db == "work" else settings.published_db
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("SELECT * FROM marts.kpi_snapshots ORDER BY period, revision, branch_code, metric").fetchall()


def _row(settings, branch, metric, revision=1):
    with duckdb.connect(str(settings.work_db), read_only=True) as con:
        return con.execute("SELECT value, numerator, denominator FROM marts.kpi_snapshots "
                           "WHERE branch_code = ? AND metric = ? AND revision = ?",
                           [branch, metric, revision]).fetchone()


def test_history_rows_equal_the_marts(snap_settings):
    result = run_snapshot(snap_settings, "2024-06", env={})
    assert result.revision == 1 and result.new_revision and result.ok
    # branch row = mart row
    n, x = SATISFACTION[("2024-06", "SC")][STAGES.index("SURVEY")]
    assert _row(snap_settings, "SC", "csat.SURVEY") == (pytest.approx(x / n, abs=1e-12), x, n)
    received, valid, pif, closed, p90, within = COMPLAINTS[("2024-06", "SC")]
    assert _row(snap_settings, "SC", "complaint_handling_days_p90") == (p90, None, closed)
    assert _row(snap_settings, "SC", "complaints_per_10k_policies") == (
        pytest.approx(received * 10000 / pif), received, pif)
    # company row = pooled over branches
    n_all = sum(SATISFACTION[("2024-06", b)][1][0] for b in ("JL", "SC", EVIL))
    x_all = sum(SATISFACTION[("2024-06", b)][1][1] for b in ("JL", "SC", EVIL))
    assert _row(snap_settings, COMPANY, "csat.SURVEY") == (pytest.approx(x_all / n_all, abs=1e-12), x_all, n_all)
    # the watch list counts customers, not policies
    assert _row(snap_settings, "JL", "watchlist_customers")[0] == 7
    assert _row(snap_settings, COMPANY, "watchlist_customers")[0] == 13
    assert _row(snap_settings, COMPANY, "segment_share.QUALITY") == (pytest.approx(1050 / 1565), 1050, 1565)
    # renewal lift = renewed / renewals expected at the baseline rate; the company value is exact
    expected = sum(due * base for (p, _), (due, _r, base) in WINBACK.items() if p == "2024-06")
    renewed = sum(r for (p, _), (_d, r, _b) in WINBACK.items() if p == "2024-06")
    assert _row(snap_settings, COMPANY, "renewal_lift") == (pytest.approx(renewed / expected), renewed,
                                                              pytest.approx(expected))
    due, r_sc, base = WINBACK[("2024-06", "SC")]
    assert _row(snap_settings, "SC", "renewal_lift") == (pytest.approx(r_sc / due / base), r_sc,
                                                         pytest.approx(base * due))
    # the p90 is not additive: no invented company value
    assert _row(snap_settings, COMPANY, "complaint_handling_days_p90") is None
    # published through the publish step
    assert fake_publish.calls == [(fake_publish.calls[0][0], "2024-06", 1)]
    assert _history(snap_settings, "published") == _history(snap_settings, "work")


def test_rerunning_an_unchanged_period_changes_nothing(snap_settings):
    first = run_snapshot(snap_settings, "2024-06", env={})
    rows = _history(snap_settings)
    html_before = first.html_path.read_bytes()
    mtime = first.html_path.stat().st_mtime_ns
    second = run_snapshot(snap_settings, "2024-06", env={})
    assert second.revision == 1 and not second.new_revision
    assert second.publish_status == "up to date" and len(fake_publish.calls) == 1
    assert _history(snap_settings) == rows
    assert second.html_path.read_bytes() == html_before and second.html_path.stat().st_mtime_ns == mtime


def test_late_data_adds_revision_2_and_leaves_revision_1_unchanged(snap_settings):
    run_snapshot(snap_settings, "2024-06", env={})
    revision_1 = [r for r in _history(snap_settings) if r[6] == 1]
    # late surveys for JL arrive and the daily pipeline publishes them
    change_published(snap_settings, "UPDATE marts.mart_stage_satisfaction SET responses = responses + 20, "
                     "satisfied = satisfied + 5, csat = (satisfied + 5) / (responses + 20) "
                     "WHERE branch_code = 'JL' AND stage = 'SURVEY' AND month = DATE '2024-06-01'")
    result = run_snapshot(snap_settings, "2024-06", env={})
    assert result.revision == 2 and result.new_revision
    assert "csat.SURVEY@JL" in result.revision_reason and "csat.SURVEY@ALL" in result.revision_reason
    history = _history(snap_settings)
    assert [r for r in history if r[6] == 1] == revision_1
    revision_2 = [r for r in history if r[6] == 2]
    assert len(revision_2) == len(revision_1)
    assert all(r[8] is True and r[9] == result.revision_reason for r in revision_2)
    assert not any(r[8] for r in revision_1)
    n, x = SATISFACTION[("2024-06", "JL")][1]
    assert _row(snap_settings, "JL", "csat.SURVEY", revision=2) == (pytest.approx((x + 5) / (n + 20)), x + 5, n + 20)
    assert _row(snap_settings, "JL", "csat.SURVEY", revision=1) == (pytest.approx(x / n), x, n)
    # the published file has both revisions
    assert _history(snap_settings, "published") == history
    assert "revision 2" in result.html_path.read_text(encoding="utf-8")
    # and it is stable again
    assert run_snapshot(snap_settings, "2024-06", env={}).revision == 2
    assert _history(snap_settings) == history


def test_a_failed_publish_is_reported_and_retried(snap_settings, monkeypatch):
    def broken(settings, run_id, revision):
        raise RuntimeError("audit failed on marts.kpi_snapshots")

    monkeypatch.setattr(snapshot, "_publish", broken)
    result = run_snapshot(snap_settings, "2024-06", env={})
    assert not result.ok and "audit failed" in result.publish_status
    assert result.html_path.exists() and len(_history(snap_settings)) == result.rows  # nothing lost
    monkeypatch.setattr(snapshot, "_publish", fake_publish)
    retry = run_snapshot(snap_settings, "2024-06", env={})
    assert retry.ok and not retry.new_revision and retry.publish_status.startswith("published")
    assert _history(snap_settings, "published") == _history(snap_settings)


def test_report_is_self_contained_and_escapes_data(snap_settings):
    result = run_snapshot(snap_settings, "2024-06", env={})
    html = result.html_path.read_text(encoding="utf-8")
    assert not re.search(r"https?:|//[a-z0-9]", html, re.IGNORECASE), "external URL in the report"
    assert not re.search(r"<(link|img|script|iframe)\b", html, re.IGNORECASE)
    assert "<svg" in html and "<style>" in html
    assert EVIL not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # bilingual section titles and the 15-day line
    for label in ("要点 Headline", "Satisfaction by branch and stage", "投诉处理 Complaint handling",
                  "15 天 days", "投诉挽回 Win-back", "呼叫中心 Call centre", "核保关注名单 Underwriting watch list",
                  "环比变化 Month-over-month"):
        assert label in html, label


def test_report_headline_numbers_equal_the_marts(snap_settings):
    result = run_snapshot(snap_settings, "2024-06", env={})
    html = result.html_path.read_text(encoding="utf-8")
    shown = {(m, b): float(v) for m, b, v in
             re.findall(r'data-metric="([^"]+)" data-branch="([^"]+)" data-value="([^"]+)"', html)}
    with duckdb.connect(str(snap_settings.published_db), read_only=True) as con:
        marts = {
            "csat.SURVEY": con.execute("SELECT sum(satisfied) / sum(responses) FROM marts.mart_stage_satisfaction "
                                       "WHERE stage = 'SURVEY' AND month = DATE '2024-06-01'").fetchone()[0],
            "valid_complaint_rate": con.execute("SELECT sum(valid) / sum(received) FROM marts.mart_complaints "
                                                "WHERE month = DATE '2024-06-01'").fetchone()[0],
            "service_level_20s": con.execute("SELECT sum(answered_within_20s) / sum(offered) FROM "
                                             "marts.mart_call_center_monthly WHERE month = DATE '2024-06-01'").fetchone()[0],
            "winback_rate": con.execute("SELECT sum(renewed) / sum(due_for_renewal) FROM marts.mart_winback "
                                        "WHERE month = DATE '2024-06-01'").fetchone()[0],
        }
        sc_p90 = con.execute("SELECT handling_days_p90 FROM marts.mart_complaints WHERE branch_code = 'SC' "
                             "AND month = DATE '2024-06-01'").fetchone()[0]
    for metric, value in marts.items():
        assert shown[(metric, COMPANY)] == pytest.approx(value, abs=1e-12), metric
    assert shown[("complaint_handling_days_p90", "SC")] == sc_p90
    # formatted for people: percent with one decimal
    assert f"{marts['csat.SURVEY'] * 100:.1f}%" in html
    # SC's survey drop (140/220 vs 185/210) is significant and marked; JL's wobble is not
    mom = html[html.index("环比变化 Month-over-month"):]
    assert re.search(r'data-metric="csat.SURVEY" data-branch="SC"[^<]*</span></td><td><span class="chg sig worse"', mom)
    assert 'data-metric="csat.REPORT" data-branch="JL"' not in mom  # +0.3 pp on ~400 responses: noise
    assert 'data-metric="csat.REPORT" data-branch="ALL"' in mom  # company rows are always listed
    assert "Sichuan Branch" in html and "查勘 On-site survey" in html


def test_csv_has_every_snapshot_row_and_guards_formulas(snap_settings):
    change_published(snap_settings, "UPDATE marts.mart_complaints SET branch_code = '=HYPERLINK(1)' "
                     "WHERE branch_code = 'SC'")
    result = run_snapshot(snap_settings, "2024-06", env={})
    text = result.csv_path.read_bytes().decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == result.rows == len(_history(snap_settings))
    evil = [r for r in rows if "HYPERLINK" in r["branch_code"]]
    assert evil and all(r["branch_code"] == "'=HYPERLINK(1)" for r in evil)
    # numbers are written as numbers (a guard on "-" must not turn them into text)
    assert all(r[c] == "" or float(r[c]) == float(r[c]) for r in rows for c in ("value", "numerator", "denominator"))


def test_no_published_file_or_no_data_is_a_clear_error(snap_settings, tmp_path):
    with pytest.raises(SnapshotError, match="no KPI rows for 2023-01"):
        run_snapshot(snap_settings, "2023-01", env={})
    snap_settings.published_db.unlink()
    with pytest.raises(SnapshotError, match="no published file"):
        run_snapshot(snap_settings, "2024-06", env={})


def test_headlines_show_n_and_interval_and_the_weakest_cell_has_enough_responses(snap_settings):
    from dagster_project.lib.report.marts import headline_figures
    from dagster_project.lib.report.metrics import MIN_SAMPLE_SIZE, wilson_interval

    result = run_snapshot(snap_settings, "2024-06", env={})
    html = result.html_path.read_text(encoding="utf-8")
    headline = html[html.index("要点 Headline"):html.index('<div class="tiles">')]
    # every company number of the headline carries its n and a 95% interval
    with duckdb.connect(str(snap_settings.published_db), read_only=True) as con:
        x, n = con.execute("SELECT sum(valid), sum(received) FROM marts.mart_complaints "
                           "WHERE month = DATE '2024-06-01'").fetchone()
        figures = {h.key: h for h in headline_figures(con, last_month=date(2024, 6, 1))}
        cx, cn = con.execute("SELECT sum(satisfied), sum(responses) FROM marts.mart_stage_satisfaction "
                             "WHERE month BETWEEN DATE '2023-07-01' AND DATE '2024-06-01'").fetchone()
    low, high = wilson_interval(x, n)
    assert f"(n = {n:,}, 95% CI {low * 100:.1f}–{high * 100:.1f}%)" in headline
    assert headline.count("95% CI") >= 8
    # the weakest cell named has at least the minimum sample (the fixture's worst raw cells are
    # the tiny third branch's, which must not be named)
    weakest = re.search(r"Weakest branch–stage cell: <b>([^<]*)</b>, [\d.]+% satisfied \(95% CI [^,]*, n = ([\d,]+)",
                        headline)
    assert weakest and int(weakest.group(2).replace(",", "")) >= MIN_SAMPLE_SIZE
    assert EVIL_TEXT_ESCAPED not in weakest.group(1)
    # the 12-month figures are the CLI's: pooled over May and June, Wilson interval
    csat = figures["csat"]
    assert (csat.numerator, csat.n) == (cx, cn)
    assert csat.interval == pytest.approx(wilson_interval(cx, cn))
    assert csat.first_month == "2024-05" and csat.last_month == "2024-06"
    assert "近12个月 The last 12 months" in html


EVIL_TEXT_ESCAPED = "&lt;script&gt;"
