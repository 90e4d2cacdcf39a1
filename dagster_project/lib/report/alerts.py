"""Alerts between monthly reports, after each daily publish (docs/bi.md#alerts).

Three conditions, each about one branch:

- ``CSAT_CONTROL_LIMIT``: a branch × stage cell of ``mart_satisfaction_control_limits`` outside the
  adjusted 95% control limits on the worse side (``outside_95`` with ``z_adjusted < 0``) in two or
  more consecutive months, the last of them the latest month of the mart or the one before it;
- ``COMPLAINT_CONTROL_LIMIT``: the same for a branch's complaints per 10k policies in
  ``mart_complaint_control_limits`` (worse = above, ``z_adjusted > 0``);
- ``OVERDUE_FOLLOWUP``: a branch's follow-up cases still open and past their deadline at the end of
  the data (``fct_followup_case.is_open_overdue``) at or above the threshold
  (``CSWH_ALERT_OVERDUE_CASES``, default 5: ``Settings.alert_overdue_cases``), once per branch and month of the data.

A condition is one alert: its key is the kind, the branch, the stage and the first month of the
run of consecutive months (so a run that goes on does not alert again), or the month of the data for
overdue cases. ``record_alerts`` keeps every condition found in ``marts.branch_alerts`` of the work
file (publish copies it into the published file); ``send_alerts`` mails each alert of the published
file that has no delivery in ``reporting.alert_deliveries`` yet, one message per recipient (the
branch's ``CSWH_SMTP_TO_<BRANCH>``, else ``CSWH_SMTP_TO``), so a re-run sends nothing again.
"""

from __future__ import annotations

import html as html_lib
import smtplib
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Callable, Mapping

import duckdb

from dagster_project.lib.report.mail_html import FONT, H2, P, MailBody, file_safe, grid
from dagster_project.lib.report.mailer import (
    DEFAULT_SENDER,
    LOCAL_TZ,
    MailContent,
    SmtpConfig,
    SmtpConfigError,
    build_message,
    parse_recipients,
    transmit,
)
from dagster_project.lib.report.metrics import STAGE_LABELS, poisson_interval, wilson_interval
from dagster_project.lib.sql import sql_literal
from dagster_project.settings import connect_work_db

ALERTS_TABLE = "marts.branch_alerts"
# When a condition was first and last found: a warehouse built at another time, or day by day,
# finds the same conditions at other times.
RECORDING_TIME_COLUMNS = ("detected_at", "updated_at")
DELIVERIES_TABLE = "reporting.alert_deliveries"
DEFAULT_OVERDUE_THRESHOLD = 5
CONSECUTIVE_PERIODS = 2
SUBJECT_PREFIX = "客服预警 Customer-service alert"

KIND_TITLES = {
    "CSAT_CONTROL_LIMIT": "满意度低于控制限 CSAT below the adjusted control limit",
    "COMPLAINT_CONTROL_LIMIT": "投诉率高于控制限 Complaint rate above the adjusted control limit",
    "OVERDUE_FOLLOWUP": "回访逾期 Overdue follow-up cases",
}

TABLE_COMMENT = ("Branch alerts (机构预警) found after each daily publish: a stage cell outside the adjusted 95% control "
                 "limits on the worse side for two consecutive months, a complaint rate above them for two consecutive "
                 "months, or open overdue follow-up cases at or above the threshold; one row per condition, with its "
                 "evidence (docs/bi.md#alerts).")
COLUMN_COMMENTS = {
    "alert_key": "The condition: kind|branch|stage|first month of the run (or the data's month for overdue cases).",
    "kind": "CSAT_CONTROL_LIMIT, COMPLAINT_CONTROL_LIMIT or OVERDUE_FOLLOWUP.",
    "branch_code": "Branch code (机构).",
    "stage": "Journey stage of a CSAT alert; empty otherwise.",
    "first_month": "First month of the run of consecutive months outside the limit (the data's month for overdue cases).",
    "last_month": "Last month of the run found so far.",
    "periods": "Consecutive months outside the limit (1 for overdue cases).",
    "n": "The last month's n: responses (CSAT), complaints received (complaints) or overdue cases.",
    "value": "The last month's value: CSAT, complaints per 10k policies, or the number of overdue cases.",
    "interval_low": "Lower end of the value's 95% interval (Wilson for CSAT, Poisson for complaints).",
    "interval_high": "Upper end of the value's 95% interval.",
    "control_limit": "The adjusted 95% limit it crossed (lower for CSAT, upper for complaints); the threshold for overdue cases.",
    "evidence": "Each month of the run: value, n, 95% interval and limit (the e-mail's text).",
    "detected_at": "When the condition was first found (local time).",
    "updated_at": "When the condition was last found (local time).",
}


@dataclass(frozen=True)
class Alert:
    alert_key: str
    kind: str
    branch_code: str
    stage: str | None
    first_month: date
    last_month: date
    periods: int
    n: float
    value: float
    interval_low: float | None
    interval_high: float | None
    control_limit: float
    evidence: str


def _month_index(d: date) -> int:
    return d.year * 12 + d.month - 1


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _runs(rows: list[tuple], latest: date) -> list[list[tuple]]:
    """Runs of consecutive months (rows of one cell, month first, sorted) of at least
    CONSECUTIVE_PERIODS months whose last month is the latest month or the one before it."""
    runs: list[list[tuple]] = []
    current: list[tuple] = []
    for row in rows:
        if current and _month_index(row[0]) == _month_index(current[-1][0]) + 1:
            current.append(row)
        else:
            if current:
                runs.append(current)
            current = [row]
    if current:
        runs.append(current)
    return [r for r in runs if len(r) >= CONSECUTIVE_PERIODS and _month_index(r[-1][0]) >= _month_index(latest) - 1]


def _table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'marts' "
                            "AND table_name = ?", [table]).fetchone()[0])


@dataclass(frozen=True)
class LimitRule:
    """A control-limit alert: which cells of which mart, read how. ``measures`` selects, in order,
    the alert's n, the interval's second input, the value and the crossed limit."""

    kind: str
    table: str
    cell_columns: tuple[str, ...]  # branch_code first, then the stage where a cell has one
    measures: str
    worse_side: str  # the adjusted z on the side that disappoints customers
    interval: Callable[[float, float], tuple[float, float]]
    describe: Callable[..., str]  # (month, n, second, value, low, high, limit) -> one evidence line


LIMIT_RULES = (
    LimitRule("CSAT_CONTROL_LIMIT", "mart_satisfaction_control_limits", ("branch_code", "stage"),
              "responses, satisfied, csat, limit_95_low", "z_adjusted < 0",
              lambda n, satisfied: wilson_interval(satisfied, n),
              lambda month, n, _, value, low, high, limit: (
                  f"{month:%Y-%m}: CSAT {_pct(value)} (n = {n:,.0f} responses, 95% CI {_pct(low)}–{_pct(high)}) "
                  f"below the adjusted lower limit {_pct(limit)}")),
    LimitRule("COMPLAINT_CONTROL_LIMIT", "mart_complaint_control_limits", ("branch_code",),
              "received, policies_in_force, per_10k_policies, limit_95_high", "z_adjusted > 0",
              lambda received, policies: poisson_interval(received, policies, 10_000),
              lambda month, n, policies, value, low, high, limit: (
                  f"{month:%Y-%m}: {value:.2f} complaints per 10k policies (n = {n:,.0f} complaints, "
                  f"{policies:,.0f} policies; 95% CI {low:.2f}–{high:.2f}) above the adjusted upper limit {limit:.2f}")),
)


def _control_limit_alerts(con, rule: LimitRule) -> list[Alert]:
    """One alert per run of consecutive months a cell spent outside its adjusted 95% limits on the worse side."""
    if not _table_exists(con, rule.table):
        return []
    latest = con.execute(f"SELECT max(month) FROM marts.{rule.table}").fetchone()[0]
    cells_sql = ", ".join(rule.cell_columns)
    rows = con.execute(f"SELECT {cells_sql}, month, {rule.measures} FROM marts.{rule.table} "
                       f"WHERE outside_95 AND {rule.worse_side} ORDER BY {cells_sql}, month").fetchall()
    width = len(rule.cell_columns)
    cells: dict[tuple[str, ...], list[tuple]] = {}
    for row in rows:
        n, second, value, limit = map(float, row[width + 1:])
        cells.setdefault(tuple(map(str, row[:width])), []).append(
            (row[width], n, second, value, *rule.interval(n, second), limit))
    out = []
    for cell, months in cells.items():
        branch, stage = cell[0], (cell[1] if width > 1 else None)
        for run in _runs(months, latest):
            month, n, _, value, low, high, limit = run[-1]
            out.append(Alert(f"{rule.kind}|{branch}|{stage or ''}|{run[0][0]:%Y-%m}", rule.kind, branch, stage,
                             run[0][0], month, len(run), n, value, low, high, limit,
                             "\n".join(rule.describe(*m) for m in run)))
    return out


def _overdue_alerts(con, threshold: int) -> list[Alert]:
    if not _table_exists(con, "fct_followup_case"):
        return []
    as_of = con.execute("SELECT max(month) FROM marts.fct_followup_case").fetchone()[0]
    if as_of is None:
        return []
    rows = con.execute(
        "SELECT branch_code, count(*), strftime(min(due_ts), '%Y-%m-%d %H:%M'), count(*) FILTER (WHERE escalation_level >= 2) "
        "FROM marts.fct_followup_case WHERE is_open_overdue GROUP BY branch_code HAVING count(*) >= ? "
        "ORDER BY branch_code", [threshold]).fetchall()
    return [Alert(f"OVERDUE_FOLLOWUP|{branch}||{as_of:%Y-%m}", "OVERDUE_FOLLOWUP", str(branch), None, as_of, as_of, 1,
                  float(count), float(count), None, None, float(threshold),
                  f"{count} follow-up cases open and past their deadline at the end of the data ({as_of:%Y-%m}); "
                  f"threshold {threshold}; the oldest was due {oldest}; {escalated} escalated to level 2")
            for branch, count, oldest, escalated in rows]


def evaluate(con: duckdb.DuckDBPyConnection, threshold: int = DEFAULT_OVERDUE_THRESHOLD) -> list[Alert]:
    """Every alert condition in the marts of `con` (the work file's or the published file's)."""
    alerts = [a for rule in LIMIT_RULES for a in _control_limit_alerts(con, rule)] + _overdue_alerts(con, threshold)
    return sorted(alerts, key=lambda a: (a.branch_code, a.kind, a.stage or "", a.first_month))


def ensure_alerts_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS marts")
    con.execute(f"""CREATE TABLE IF NOT EXISTS {ALERTS_TABLE} (
        alert_key VARCHAR PRIMARY KEY, kind VARCHAR NOT NULL, branch_code VARCHAR NOT NULL, stage VARCHAR,
        first_month DATE NOT NULL, last_month DATE NOT NULL, periods INTEGER NOT NULL, n DOUBLE, value DOUBLE,
        interval_low DOUBLE, interval_high DOUBLE, control_limit DOUBLE, evidence VARCHAR,
        detected_at TIMESTAMP NOT NULL, updated_at TIMESTAMP NOT NULL)""")
    con.execute(f"COMMENT ON TABLE {ALERTS_TABLE} IS {sql_literal(TABLE_COMMENT)}")
    for column, text in COLUMN_COMMENTS.items():
        con.execute(f"COMMENT ON COLUMN {ALERTS_TABLE}.{column} IS {sql_literal(text)}")


def record_alerts(work_db: Path, threshold: int = DEFAULT_OVERDUE_THRESHOLD) -> tuple[list[Alert], list[str]]:
    """Evaluate the work file's marts and keep every condition in marts.branch_alerts: a new one is
    added, a known one gets its latest month and evidence. Returns (alerts found, keys new this time)."""
    with connect_work_db(work_db) as con:
        return record_alerts_in(con, threshold)


def record_alerts_in(con: duckdb.DuckDBPyConnection,
                     threshold: int = DEFAULT_OVERDUE_THRESHOLD) -> tuple[list[Alert], list[str]]:
    """``record_alerts`` on an open connection to the work file."""
    now = datetime.now(LOCAL_TZ).replace(tzinfo=None)
    alerts = evaluate(con, threshold)
    ensure_alerts_table(con)
    known = {r[0] for r in con.execute(f"SELECT alert_key FROM {ALERTS_TABLE}").fetchall()}
    new = []
    for a in alerts:
        values = [a.kind, a.branch_code, a.stage, a.first_month, a.last_month, a.periods, a.n, a.value,
                  a.interval_low, a.interval_high, a.control_limit, a.evidence]
        if a.alert_key in known:
            con.execute(f"UPDATE {ALERTS_TABLE} SET kind = ?, branch_code = ?, stage = ?, first_month = ?, "
                        "last_month = ?, periods = ?, n = ?, value = ?, interval_low = ?, interval_high = ?, "
                        "control_limit = ?, evidence = ?, updated_at = ? WHERE alert_key = ?",
                        [*values, now, a.alert_key])
        else:
            con.execute(f"INSERT INTO {ALERTS_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [a.alert_key, *values, now, now])
            new.append(a.alert_key)
    return alerts, new


def published_alerts(published_db: Path) -> list[Alert]:
    """The alerts listed in the published file (none before the first publish that carried them)."""
    if not published_db.exists():
        return []
    with duckdb.connect(str(published_db), read_only=True) as con:
        if not _table_exists(con, "branch_alerts"):
            return []
        rows = con.execute(
            "SELECT alert_key, kind, branch_code, stage, first_month, last_month, periods, n, value, interval_low, "
            f"interval_high, control_limit, evidence FROM {ALERTS_TABLE} ORDER BY branch_code, alert_key").fetchall()
    return [Alert(*row) for row in rows]


# --------------------------------------------------------------------------------------------------
# the e-mail


def ensure_deliveries(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS reporting")
    con.execute(f"""CREATE TABLE IF NOT EXISTS {DELIVERIES_TABLE} (
        alert_key VARCHAR NOT NULL, attempted_at TIMESTAMP NOT NULL, status VARCHAR NOT NULL,
        transport VARCHAR NOT NULL, recipients VARCHAR, subject VARCHAR, location VARCHAR, detail VARCHAR)""")


def alert_title(alert: Alert) -> str:
    stage = f" · {STAGE_LABELS.get(alert.stage, (alert.stage, alert.stage))[1]}" if alert.stage else ""
    return f"{alert.branch_code}{stage}: {KIND_TITLES.get(alert.kind, alert.kind)}"


def alert_content(alert: Alert) -> MailContent:
    """The alert as a strict-client e-mail: a table of the evidence with inline styles, no <style>."""
    esc = html_lib.escape
    subject = f"{SUBJECT_PREFIX} — {alert_title(alert)} ({alert.last_month:%Y-%m})"
    if alert.kind == "OVERDUE_FOLLOWUP":
        head = ["条件 Condition", "逾期件数 Overdue cases (n)", "阈值 Threshold"]
        rows = [[esc(KIND_TITLES[alert.kind]), f"{alert.n:,.0f}", f"{alert.control_limit:,.0f}"]]
    else:
        pct = alert.kind == "CSAT_CONTROL_LIMIT"
        fmt = _pct if pct else (lambda v: "–" if v is None else f"{v:.2f}")
        head = ["最近月份 Latest month", "数值 Value", "n", "95% CI", "控制限 Limit"]
        rows = [[f"{alert.last_month:%Y-%m}", fmt(alert.value), f"{alert.n:,.0f}",
                 f"{fmt(alert.interval_low)}–{fmt(alert.interval_high)}", fmt(alert.control_limit)]]
    evidence = grid(["月份 Month", "证据 Evidence"],
                    [[esc(line.split(": ", 1)[0]), esc(line.split(": ", 1)[-1])] for line in alert.evidence.splitlines()])
    body = (f'<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0">'
            f'<tr><td style="{FONT};padding:12px">'
            f'<h2 style="{H2}">{esc(alert_title(alert))}</h2>'
            f'<p style="{P}">{alert.periods} consecutive month(s) up to {alert.last_month:%Y-%m} '
            f'(first {alert.first_month:%Y-%m}). Evidence:</p>'
            f'{grid(head, rows)}{evidence}'
            f'<p style="{P}">Sent once per condition (alert {esc(alert.alert_key)}); listed in marts.branch_alerts '
            f'of the published file. docs/bi.md#alerts</p></td></tr></table>')
    html = f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{esc(subject)}</title></head><body>{body}</body></html>'
    text = f"{alert_title(alert)}\n\n{alert.evidence}\n\nAlert {alert.alert_key}; listed in marts.branch_alerts.\n"
    return MailContent(subject, MailBody(html, ()), text)


@dataclass(frozen=True)
class AlertDelivery:
    alert_key: str
    branch_code: str
    status: str  # "delivered" | "written to the outbox" | "failed"
    detail: str
    recipients: tuple[str, ...] = ()
    files: tuple[str, ...] = ()


def _delivered_keys(con) -> set[str]:
    ensure_deliveries(con)
    return {r[0] for r in con.execute(f"SELECT DISTINCT alert_key FROM {DELIVERIES_TABLE} "
                                      "WHERE status = 'DELIVERED'").fetchall()}


def send_alerts(work_db: Path, published_db: Path, outbox_dir: Path, *, env: Mapping[str, str],
                branch_recipients: Mapping[str, tuple[str, ...]]) -> list[AlertDelivery]:
    """Mail every alert of the published file not delivered before: one message per recipient, via
    SMTP when CSWH_SMTP_HOST is set (counted only for recipients the server accepted), else one
    .eml per recipient in the outbox. Failures are recorded and retried by the next run."""
    alerts = published_alerts(published_db)
    with connect_work_db(work_db) as con:
        done = _delivered_keys(con)
    pending = [a for a in alerts if a.alert_key not in done]
    out: list[AlertDelivery] = []
    if not pending:
        return out
    config = None
    config_error = None
    try:
        config = SmtpConfig.from_env(env, require_recipients=False)
    except SmtpConfigError as exc:
        config_error = exc
    sender = config.sender if config else ((env or {}).get("CSWH_SMTP_FROM") or DEFAULT_SENDER).strip()
    company = tuple(parse_recipients((env or {}).get("CSWH_SMTP_TO")))
    for alert in pending:
        recipients = tuple(branch_recipients.get(alert.branch_code.upper(), ())) or company
        content = alert_content(alert)
        stem = f"alert-{file_safe(alert.branch_code)}-{alert.kind.lower()}-{alert.first_month:%Y-%m}" + (
            f"-{file_safe(alert.stage)}" if alert.stage else "")
        messages = [(r, build_message(content, sender=sender, recipient=r, idstring=f"{stem}-{i}"))
                    for i, r in enumerate(recipients or (None,))]
        now = datetime.now(LOCAL_TZ).replace(tzinfo=None)
        transport = "smtp" if config else "outbox"
        location = f"{config.host}:{config.port}" if config else str(outbox_dir)
        try:
            if config_error is not None:
                raise config_error
            status_text, detail, sent_to, files = transmit(config, messages, outbox_dir, stem,
                                                           f"{alert.branch_code}'s alert")
            delivery = AlertDelivery(alert.alert_key, alert.branch_code, status_text, detail, sent_to, files)
            status = "DELIVERED"
        except (OSError, smtplib.SMTPException, SmtpConfigError) as exc:  # recorded; the next run retries
            delivery = AlertDelivery(alert.alert_key, alert.branch_code, "failed",
                                     f"failed: {type(exc).__name__}: {exc}. The next run retries.")
            status = "FAILED"
        with connect_work_db(work_db) as con:
            ensure_deliveries(con)
            con.execute(f"INSERT INTO {DELIVERIES_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [alert.alert_key, now, status, transport, ", ".join(delivery.recipients or recipients),
                         content.subject, location, delivery.detail])
        out.append(delivery)
    return out
