"""End to end on the tiny generated data set, through the jobs: the session's pipeline run (ingest ->
dbt -> gates -> publish), then the monthly_snapshot job as `cs-warehouse snapshot` runs it (history
rows -> publish, gated in the same run -> report and e-mail), its exit codes, and late data through a
second pipeline run adding revision 2."""

from __future__ import annotations

import re
import socket

import dagster as dg
import duckdb
import pytest

from dagster_project.cli.commands import run_snapshot_job
from dagster_project.lib.report.metrics import COMPANY
from tests.conftest import run_pipeline

pytestmark = pytest.mark.slow
PERIOD = "2025-03"


@pytest.fixture()
def published_settings(built_settings, copy_settings):
    """A copy of the session warehouse, published by the session's pipeline run."""
    settings = copy_settings(built_settings, with_landing=False)
    assert settings.published_db.exists()
    return settings


def _published(settings, sql, params=()):
    with duckdb.connect(str(settings.published_db), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_snapshot_on_the_real_marts(published_settings):
    settings = published_settings
    assert run_snapshot_job(settings, PERIOD) == 0
    month = f"{PERIOD}-01"
    history = {(b, m): (v, n, d) for b, m, v, n, d in _published(
        settings, "SELECT branch_code, metric, value, numerator, denominator FROM marts.kpi_snapshots "
                  "WHERE period = ? AND revision = 1", [PERIOD])}
    assert history
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
    html = (settings.reports_dir / "snapshots" / f"kpi-{PERIOD}.html").read_text(encoding="utf-8")
    shown = {(m, b): float(v) for m, b, v in
             re.findall(r'data-metric="([^"]+)" data-branch="([^"]+)" data-value="([^"]+)"', html)}
    for metric in ("csat.SURVEY", "valid_complaint_rate", "service_level_20s", "winback_rate"):
        assert shown[(metric, COMPANY)] == pytest.approx(history[(COMPANY, metric)][0], abs=1e-12), metric
    assert not re.search(r"https?:", html)
    assert len(list(settings.outbox_dir.glob("kpi-*.eml"))) == 1
    # the customers' own words, the key drivers and a funnel plot per stage (lib/report/voice.py), from
    # published marts that the analysis assets wrote with their comments
    for heading in ("What customers wrote", "What drives renewal", "Control limits (funnel plots)"):
        assert heading in html, heading
    assert html.count('aria-label="responses (log scale)') >= 4
    for table in ("mart_key_drivers", "mart_emerging_terms", "mart_verbatim_topics", "mart_satisfaction_control_limits"):
        [(rows, described)] = _published(
            settings, "SELECT (SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'marts' AND table_name = ?), "
                      "(SELECT count(*) FROM duckdb_columns() WHERE schema_name = 'marts' AND table_name = ? "
                      "AND comment IS NOT NULL)", [table, table])
        assert rows == 1 and described > 5, table
    assert _published(settings, "SELECT count(*) FROM marts.mart_key_drivers WHERE status = 'ESTIMATED'")[0][0] > 0
    # Recorded in the instance: one run of the job, with its three assets and the mart gates.
    instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
    [run] = instance.get_runs(filters=dg.RunsFilter(job_name="monthly_snapshot"))
    assert run.status == dg.DagsterRunStatus.SUCCESS
    checks = [r.event_log_entry.dagster_event.event_specific_data for r in instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records]
    assert checks and all(c.passed for c in checks) and {c.check_name for c in checks} >= {"gx_marts_mart_complaints"}


def test_snapshot_exit_codes(published_settings, capsys):
    settings = published_settings
    unreachable = settings.with_overrides(smtp={"CSWH_SMTP_HOST": "127.0.0.1", "CSWH_SMTP_PORT": str(_free_port()),
                                                "CSWH_SMTP_TO": "ceo@insurer.example"})
    assert run_snapshot_job(unreachable, PERIOD) == 1  # history and report saved, the e-mail failed
    err = capsys.readouterr().err
    assert "e-mail failed" in err
    assert run_snapshot_job(settings, PERIOD) == 0  # retried: delivered to the outbox
    out = capsys.readouterr().out
    assert "revision 1 (unchanged)" in out and "e-mail:  written to the outbox (1 file)" in out and "delivered" not in out
    assert run_snapshot_job(settings, "2019-01") == 2  # no partition: the data does not reach that month


def test_late_data_through_the_pipeline_adds_revision_2(published_settings):
    settings = published_settings
    assert run_snapshot_job(settings, PERIOD) == 0
    before = _published(settings, "SELECT * FROM marts.kpi_snapshots ORDER BY ALL")
    # Late data: three more JL complaint tickets received in the period land in raw; the next
    # pipeline run rebuilds the marts, gates them and publishes the changed numbers.
    with duckdb.connect(str(settings.work_db)) as con:
        # copies of up to three of JL's tickets of the period (the tiny data may hold fewer)
        late = con.execute(
            "SELECT least(count(*), 3) FROM raw.complaints WHERE branch_code = 'JL' AND strftime(received_ts, '%Y-%m') = ?",
            [PERIOD]).fetchone()[0]
        assert late >= 1
        con.execute(
            "INSERT INTO raw.complaints SELECT * EXCLUDE (n) REPLACE ('CPJL9' || lpad(CAST(n AS VARCHAR), 7, '0') AS complaint_no) "
            "FROM (SELECT *, row_number() OVER (ORDER BY complaint_no) AS n FROM raw.complaints "
            "      WHERE branch_code = 'JL' AND strftime(received_ts, '%Y-%m') = ?) WHERE n <= 3", [PERIOD])
    assert run_pipeline(settings) == 0
    assert run_snapshot_job(settings, PERIOD) == 0
    [(revision, reason)] = _published(settings, "SELECT max(revision), any_value(revision_reason) FILTER "
                                                "(WHERE revision = 2) FROM marts.kpi_snapshots WHERE period = ?", [PERIOD])
    # the reason lists the changed numbers in key order, the first eight of them
    assert revision == 2 and reason.startswith("late data changed") and "@JL" in reason
    [(first, second)] = _published(settings, "SELECT max(value) FILTER (WHERE revision = 1), max(value) FILTER "
                                             "(WHERE revision = 2) FROM marts.kpi_snapshots WHERE period = ? AND "
                                             "branch_code = 'JL' AND metric = 'complaints_received'", [PERIOD])
    assert second == first + late
    after = _published(settings, "SELECT * FROM marts.kpi_snapshots ORDER BY ALL")
    assert [r for r in after if r[6] == 1] == before
    assert {r[6] for r in after} == {1, 2}
    assert len(list(settings.outbox_dir.glob("kpi-*.eml"))) == 1  # already sent: not again
