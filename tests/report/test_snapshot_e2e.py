"""End to end on the tiny generated data set: ingest -> dbt -> gate -> publish -> snapshot."""

from __future__ import annotations

import re

import duckdb
import pytest

from dagster_project.lib.report.metrics import COMPANY
from dagster_project.lib.report.snapshot import run_snapshot

pytestmark = pytest.mark.slow
PERIOD = "2025-03"


@pytest.fixture()
def published_settings(built_settings, copy_settings):
    from dagster_project.lib.publish.publish import gate_and_publish

    settings = copy_settings(built_settings, with_landing=False)
    gate_and_publish(settings, run_id="e2e-initial")
    return settings


def _published(settings, sql, params=()):
    with duckdb.connect(str(settings.published_db), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def test_snapshot_on_the_real_marts(published_settings):
    settings = published_settings
    result = run_snapshot(settings, PERIOD, env={})
    assert result.ok, (result.publish_status, result.delivery)
    assert result.missing == ()
    month = f"{PERIOD}-01"
    history = {(b, m): (v, n, d) for b, m, v, n, d in _published(
        settings, "SELECT branch_code, metric, value, numerator, denominator FROM marts.kpi_snapshots "
                  "WHERE period = ? AND revision = 1", [PERIOD])}
    assert len(history) == result.rows
    # company CSAT per stage = the mart's own company rate
    for stage, company_csat, responses, satisfied in _published(
            settings, "SELECT stage, any_value(company_csat), sum(responses), sum(satisfied) "
                      "FROM marts.mart_stage_satisfaction WHERE month = ?::DATE GROUP BY stage", [month]):
        value, num, den = history[(COMPANY, f"csat.{stage}")]
        assert (num, den) == (satisfied, responses)
        assert value == pytest.approx(company_csat, abs=1e-12)
    # complaints: counts exactly, rates equal the mart's branch rows
    [(received, valid)] = _published(settings, "SELECT sum(received), sum(valid) FROM marts.mart_complaints "
                                               "WHERE month = ?::DATE", [month])
    assert history[(COMPANY, "complaints_received")][0] == received
    assert history[(COMPANY, "valid_complaint_rate")][1:] == (valid, received)
    for branch, p90, closed, share in _published(
            settings, "SELECT branch_code, handling_days_p90, closed, within_deadline_share "
                      "FROM marts.mart_complaints WHERE month = ?::DATE", [month]):
        assert history[(branch, "complaint_handling_days_p90")][0] == p90
        assert history[(branch, "complaint_handling_days_p90")][2] == closed
        assert history[(branch, "complaint_within_deadline_share")][0] == share
    # the report shows the same company numbers
    html = result.html_path.read_text(encoding="utf-8")
    shown = {(m, b): float(v) for m, b, v in
             re.findall(r'data-metric="([^"]+)" data-branch="([^"]+)" data-value="([^"]+)"', html)}
    for metric in ("csat.SURVEY", "valid_complaint_rate", "service_level_20s", "winback_rate"):
        assert shown[(metric, COMPANY)] == pytest.approx(history[(COMPANY, metric)][0], abs=1e-12), metric
    assert not re.search(r"https?:", html)
    assert len(list(settings.outbox_dir.glob("*.eml"))) == 1


def test_late_data_through_the_pipeline_adds_revision_2(published_settings):
    from dagster_project.lib.publish.publish import gate_and_publish

    settings = published_settings
    run_snapshot(settings, PERIOD, env={})
    before = _published(settings, "SELECT * FROM marts.kpi_snapshots ORDER BY ALL")
    # Late data: three more JL complaint tickets received in the period land in raw; dbt rebuilds the
    # complaint models and the next gated publish carries the changed numbers.
    from dagster_project.lib.transform.dbt_project import run_dbt_build

    with duckdb.connect(str(settings.work_db)) as con:
        con.execute(
            "INSERT INTO raw.complaints SELECT * EXCLUDE (n) REPLACE ('CPJL9' || lpad(CAST(n AS VARCHAR), 7, '0') AS complaint_no) "
            "FROM (SELECT *, row_number() OVER (ORDER BY complaint_no) AS n FROM raw.complaints "
            "      WHERE branch_code = 'JL' AND strftime(received_ts, '%Y-%m') = ?) WHERE n <= 3", [PERIOD])
    run_dbt_build(settings, select="int_complaints__lifecycle+ stg_complaints__complaints+")
    gate_and_publish(settings, run_id="e2e-late")
    result = run_snapshot(settings, PERIOD, env={})
    assert result.revision == 2 and "complaints_received@JL" in result.revision_reason
    after = _published(settings, "SELECT * FROM marts.kpi_snapshots ORDER BY ALL")
    assert [r for r in after if r[6] == 1] == before
    assert {r[6] for r in after} == {1, 2}
    assert result.delivery.status == "already sent"
