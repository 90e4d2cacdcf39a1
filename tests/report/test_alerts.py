"""Alerts after each daily publish (docs/bi.md#alerts), on the session's warehouse.

- the conditions equal an independent SQL reading of the control-limit marts and the follow-up cases;
- the pipeline run listed them in the published file and wrote one .eml per alert to the outbox;
- over a real SMTP conversation (aiosmtpd) each alert goes once to each of its recipients, with its
  evidence (n, interval, limit), and a re-run sends nothing again.
"""

from __future__ import annotations

import email
from email import policy

import duckdb
import pytest

from dagster_project.lib.report.alerts import (
    DEFAULT_OVERDUE_THRESHOLD,
    evaluate,
    published_alerts,
    record_alerts,
    send_alerts,
)
from tests.report.test_mailer import smtp_server  # noqa: F401  (the aiosmtpd fixture)


def _expected(con) -> dict[str, set]:
    """The alert conditions by plain SQL: a worse-side excursion in a month and in the month before
    it, the later month the mart's latest or the one before; open overdue cases per branch."""
    out = {}
    for kind, table, cell, worse in (
            ("CSAT_CONTROL_LIMIT", "mart_satisfaction_control_limits", "a.branch_code, a.stage", "z_adjusted < 0"),
            ("COMPLAINT_CONTROL_LIMIT", "mart_complaint_control_limits", "a.branch_code, NULL", "z_adjusted > 0")):
        join_stage = "AND a.stage = b.stage" if "stage" in cell else ""
        out[kind] = set(con.execute(f"""
            WITH o AS (SELECT * FROM marts.{table} WHERE outside_95 AND {worse}),
                 latest AS (SELECT max(month) AS m FROM marts.{table})
            SELECT DISTINCT {cell} FROM o a JOIN o b ON a.branch_code = b.branch_code {join_stage}
                 AND b.month = a.month - INTERVAL 1 MONTH, latest
            WHERE a.month >= latest.m - INTERVAL 1 MONTH""").fetchall())
    out["OVERDUE_FOLLOWUP"] = set(con.execute(
        "SELECT branch_code, NULL FROM marts.fct_followup_case WHERE is_open_overdue GROUP BY 1 "
        "HAVING count(*) >= ?", [DEFAULT_OVERDUE_THRESHOLD]).fetchall())
    return out


def test_the_conditions_equal_plain_sql_and_are_listed_in_the_published_file(built_settings):
    with duckdb.connect(str(built_settings.published_db), read_only=True) as con:
        alerts = evaluate(con)
        expected = _expected(con)
        listed = {r[0]: r for r in con.execute(
            "SELECT alert_key, n, value, interval_low, interval_high, control_limit FROM marts.branch_alerts").fetchall()}
        comment = con.execute("SELECT comment FROM duckdb_tables() WHERE table_name = 'branch_alerts'").fetchone()[0]
    found = {kind: {(a.branch_code, a.stage) for a in alerts if a.kind == kind} for kind in expected}
    assert found == expected
    assert sum(len(v) for v in expected.values()) >= 2  # the tiny data has a CSAT run and an overdue branch
    assert set(listed) == {a.alert_key for a in alerts}
    assert "alert" in comment.lower()
    for a in alerts:
        assert listed[a.alert_key][1:] == pytest.approx((a.n, a.value, a.interval_low, a.interval_high, a.control_limit))
        if a.kind != "OVERDUE_FOLLOWUP":
            assert a.periods >= 2 and a.evidence.count("\n") == a.periods - 1
            assert "n = " in a.evidence and "95% CI" in a.evidence and "limit" in a.evidence
            assert a.interval_low <= a.value <= a.interval_high
            # worse side: CSAT below its lower limit, complaints above the upper one
            assert (a.value < a.control_limit) == (a.kind == "CSAT_CONTROL_LIMIT")
        else:
            assert a.n >= a.control_limit == DEFAULT_OVERDUE_THRESHOLD


def _strict(html: str) -> str:
    return html.lower()


def test_the_pipeline_run_wrote_one_eml_per_alert_to_the_outbox(built_settings):
    alerts = published_alerts(built_settings.published_db)
    files = sorted(built_settings.outbox_dir.glob("alert-*.eml"))
    assert len(files) == len(alerts) >= 2
    for path in files:
        msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        assert msg["To"] is None  # no recipient configured in the session: said so, never "undisclosed"
        html = msg.get_body(("html",)).get_content()
        assert "<style" not in _strict(html) and "<svg" not in _strict(html) and "display:flex" not in _strict(html)


def test_each_alert_is_mailed_once_to_each_recipient_and_a_rerun_sends_nothing(built_settings, copy_settings,
                                                                                smtp_server):  # noqa: F811
    settings = copy_settings(built_settings, with_landing=False)
    with duckdb.connect(str(settings.work_db)) as con:  # the session run wrote to its outbox; mail this copy's
        con.execute("DELETE FROM reporting.alert_deliveries")
    collector, port = smtp_server
    alerts = published_alerts(settings.published_db)
    branch = next(a.branch_code for a in alerts if a.kind == "CSAT_CONTROL_LIMIT")
    managers = (f"manager.{branch.lower()}@insurer.example", f"deputy.{branch.lower()}@insurer.example")
    env = {"CSWH_SMTP_HOST": "127.0.0.1", "CSWH_SMTP_PORT": str(port), "CSWH_SMTP_FROM": "dw@insurer.example",
           "CSWH_SMTP_TO": "head-office@insurer.example", "CSWH_SMTP_STARTTLS": "false"}
    deliveries = send_alerts(settings.work_db, settings.published_db, settings.outbox_dir, env=env,
                             branch_recipients={branch: managers})
    assert [d.alert_key for d in deliveries] == [a.alert_key for a in alerts]
    assert all(d.detail.startswith("delivered to") for d in deliveries)
    expected = sorted((r, a.alert_key) for a in alerts
                      for r in (managers if a.branch_code == branch else ("head-office@insurer.example",)))
    received = []
    with duckdb.connect(str(settings.published_db), read_only=True) as con:
        limits = {(b, s, m): lo for b, s, m, lo in con.execute(
            "SELECT branch_code, stage, strftime(month, '%Y-%m'), limit_95_low FROM marts.mart_satisfaction_control_limits "
            "WHERE outside_95").fetchall()}
    by_key = {a.alert_key: a for a in alerts}
    for envelope in collector.envelopes:
        msg = email.message_from_bytes(envelope.content, policy=policy.default)
        (rcpt,) = envelope.rcpt_tos
        assert msg["To"] == rcpt
        key = next(k for k in by_key if by_key[k].branch_code in msg["Subject"] and
                   by_key[k].last_month.strftime("%Y-%m") in msg["Subject"] and
                   (by_key[k].stage is None) == ("·" not in msg["Subject"]))
        received.append((rcpt, key))
        alert = by_key[key]
        html = msg.get_body(("html",)).get_content()
        assert "<style" not in html.lower() and "<svg" not in html.lower()
        assert f"{alert.n:,.0f}" in html
        if alert.kind == "CSAT_CONTROL_LIMIT":
            limit = limits[(alert.branch_code, alert.stage, alert.last_month.strftime("%Y-%m"))]
            assert f"{limit * 100:.1f}%" in html  # the mart's adjusted lower limit, as the evidence
            assert f"{alert.interval_low * 100:.1f}%–{alert.interval_high * 100:.1f}%" in html
    assert sorted(received) == expected

    # a re-run of the daily pipeline: the conditions are found again, nothing is added or sent
    before = len(collector.envelopes)
    found, new = record_alerts(settings.work_db)
    assert new == [] and {a.alert_key for a in found} == set(by_key)
    assert send_alerts(settings.work_db, settings.published_db, settings.outbox_dir, env=env,
                       branch_recipients={branch: managers}) == []
    assert len(collector.envelopes) == before
    with duckdb.connect(str(settings.work_db), read_only=True) as con:
        assert con.execute("SELECT count(*), count(DISTINCT alert_key) FROM marts.branch_alerts").fetchone() == (
            len(by_key), len(by_key))
        assert con.execute("SELECT count(*) FROM reporting.alert_deliveries WHERE status = 'DELIVERED'").fetchone()[0] \
            == len(by_key)
