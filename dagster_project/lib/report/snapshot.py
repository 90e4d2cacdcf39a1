"""The monthly KPI snapshot: history rows, report, e-mail (docs/architecture.md#the-monthly-snapshot).

Three steps, which the ``monthly_snapshot`` job runs as three assets (``defs/report/assets.py``):

1. ``record_period``: reads the period's KPIs from the **published** marts, opened read-only — the
   numbers management sees are the numbers BI sees — and appends them to the history
   ``marts.kpi_snapshots`` in the **work** file, which is authoritative: an unchanged period adds
   nothing; if late data changed any number, the whole period is written again as revision n+1
   (``is_revised``, ``revision_reason``) and older revisions stay untouched (the table is only ever
   inserted into);
2. publish: the publish asset carries the history to the published file, gated by the mart checks
   in the same run (``defs/publish/assets.py``);
3. ``render_and_deliver``: renders ``reports/snapshots/kpi-YYYY-MM.html`` and ``.csv`` (rewritten
   only when the content changes) and delivers the e-mail once per period (``mailer.deliver``: SMTP
   or the outbox, with a ledger).

A publish or delivery failure does not undo the earlier steps; it is reported and the next run
retries it. ``run_snapshot`` composes the three steps around a given publish function (for the
library and its tests).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Mapping

import duckdb

from dagster_project.settings import Settings, connect_work_db
from dagster_project.lib.report import csv_export, mailer
from dagster_project.lib.report.html import ReportInput, branch_label, plain_text_summary, render_report
from dagster_project.lib.report.branch import branch_figures, read_branch_topics, render_branch_page, standalone_html
from dagster_project.lib.report.mail_html import file_safe, render_company_mail
from dagster_project.lib.report.marts import PeriodData, is_as_of_metric, read_period, table_columns
from dagster_project.lib.report.metrics import (
    COMPANY,
    KpiRow,
    changed_keys,
    compare_periods,
    format_value,
    metric_spec,
    parse_period,
    previous_period,
    revision_reason,
    sort_rows,
)

SNAPSHOT_TABLE = "marts.kpi_snapshots"
SNAPSHOT_COLUMNS = ("period", "branch_code", "metric", "value", "numerator", "denominator", "revision",
                    "published_at", "is_revised", "revision_reason")
CSV_HEADER = ("period", "branch_code", "branch_name_zh", "branch_name_en", "metric", "metric_label_zh",
              "metric_label_en", "value", "numerator", "denominator", "revision", "published_at",
              "is_revised", "revision_reason")


class SnapshotError(RuntimeError):
    """The snapshot cannot be taken at all (no published file, no data for the period)."""


@dataclass(frozen=True)
class Revision:
    period: str
    revision: int
    published_at: datetime
    is_new: bool  # this run recorded it
    reason: str | None


@dataclass(frozen=True)
class SnapshotResult:
    period: str
    revision: int
    new_revision: bool
    rows: int
    html_path: Path
    csv_path: Path
    publish_status: str  # "published" | "up to date" | "failed: ..."
    delivery: mailer.DeliveryOutcome
    revision_reason: str | None
    missing: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.delivery.ok and not self.publish_status.startswith("failed")


# --------------------------------------------------------------------------------------------------
# the history table (append-only)


def ensure_history_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS marts")
    con.execute(f"""
        CREATE TABLE IF NOT EXISTS {SNAPSHOT_TABLE} (
            period VARCHAR NOT NULL,
            branch_code VARCHAR NOT NULL,
            metric VARCHAR NOT NULL,
            value DOUBLE,
            numerator DOUBLE,
            denominator DOUBLE,
            revision INTEGER NOT NULL,
            published_at TIMESTAMP NOT NULL,
            is_revised BOOLEAN NOT NULL,
            revision_reason VARCHAR,
            PRIMARY KEY (period, branch_code, metric, revision)
        )""")
    con.execute(f"COMMENT ON TABLE {SNAPSHOT_TABLE} IS 'Monthly KPI snapshot history (append-only): one row "
                "per period x branch (ALL = company) x metric x revision. A period is never overwritten: "
                "late data adds revision n+1 with is_revised and revision_reason.'")
    comments = {
        "period": "Snapshot month, YYYY-MM.",
        "branch_code": "Branch (机构) code; ALL = company-wide.",
        "metric": "KPI key, e.g. csat.SURVEY, valid_complaint_rate, complaint_handling_days_p90.",
        "value": "The KPI value as published (rates are fractions 0-1).",
        "numerator": "Numerator of a rate (e.g. satisfied responses); null if not a rate.",
        "denominator": "Denominator of a rate (e.g. responses), or the n behind a percentile.",
        "revision": "1 for the first snapshot of the period; n+1 each time late data changed a number.",
        "published_at": "When this revision was recorded (Asia/Shanghai local time).",
        "is_revised": "True for revisions after the first.",
        "revision_reason": "What changed against the previous revision.",
    }
    for column, text in comments.items():
        con.execute(f"COMMENT ON COLUMN {SNAPSHOT_TABLE}.{column} IS '{text}'")


def latest_revision_rows(con: duckdb.DuckDBPyConnection, period: str) -> tuple[int, list[KpiRow], tuple]:
    """(revision, rows, (published_at, reason)) of the period's latest revision; revision 0 if none."""
    latest = con.execute(f"SELECT max(revision) FROM {SNAPSHOT_TABLE} WHERE period = ?", [period]).fetchone()[0]
    if latest is None:
        return 0, [], (None, None)
    result = con.execute(
        f"SELECT branch_code, metric, value, numerator, denominator, published_at, revision_reason "
        f"FROM {SNAPSHOT_TABLE} WHERE period = ? AND revision = ?", [period, latest]).fetchall()
    rows = [KpiRow(b, m, v, n, d) for b, m, v, n, d, _, _ in result]
    return latest, rows, (result[0][5], result[0][6])


def record_revision(con: duckdb.DuckDBPyConnection, period: str, rows: list[KpiRow],
                    now: datetime) -> Revision:
    """Append the period's rows as a new revision if they differ from the latest one."""
    ensure_history_table(con)
    latest, old_rows, (old_at, old_reason) = latest_revision_rows(con, period)
    if latest and not changed_keys(old_rows, rows):
        return Revision(period, latest, old_at, False, old_reason)
    revision = latest + 1
    reason = revision_reason(changed_keys(old_rows, rows)) if latest else None
    con.execute("BEGIN TRANSACTION")
    try:
        con.executemany(
            f"INSERT INTO {SNAPSHOT_TABLE} ({', '.join(SNAPSHOT_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [[period, r.branch_code, r.metric, r.value, r.numerator, r.denominator, revision, now,
              revision > 1, reason] for r in sort_rows(rows)])
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return Revision(period, revision, now, True, reason)


def published_revision(con: duckdb.DuckDBPyConnection, period: str) -> int:
    """The latest revision of `period` in the published file (0 if the table or the period is absent)."""
    if not table_columns(con, "kpi_snapshots"):
        return 0
    value = con.execute("SELECT max(revision) FROM marts.kpi_snapshots WHERE period = ?", [period]).fetchone()[0]
    return int(value or 0)


def published_version(con: duckdb.DuckDBPyConnection) -> str | None:
    """The version id in the published file's manifest, if publish wrote one."""
    columns = table_columns(con, "publish_manifest", schema="meta")
    column = next((c for c in ("version_id", "version") if c in columns), None)
    if column is None:
        return None
    order = " ORDER BY published_at DESC" if "published_at" in columns else ""
    row = con.execute(f'SELECT "{column}" FROM meta.publish_manifest{order} LIMIT 1').fetchone()
    return None if row is None else str(row[0])


def _publish(settings: Settings, run_id: str, revision: Revision) -> str:
    """Carrying the history to the published file is the publish asset's work, in the same run as
    the mart gates (the work file may hold marts of a later run whose gate failed, which must not
    slip out with the history): ``run_snapshot`` callers pass their own publish step."""
    raise SnapshotError("the history is published by the monthly_snapshot job (`cs-warehouse snapshot`), "
                        "whose publish step runs the mart gates first")


# --------------------------------------------------------------------------------------------------
# files


def _write_if_changed(path: Path, content: bytes) -> bool:
    """Atomic write; an identical file is left alone (re-running an unchanged period changes nothing)."""
    if path.exists() and path.read_bytes() == content:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(content)
    os.replace(tmp, path)
    return True


def snapshot_csv(period: str, revision: Revision, rows: list[KpiRow]) -> bytes:
    lines = []
    for r in sort_rows(rows):
        zh, en = branch_label(r.branch_code)
        spec = metric_spec(r.metric)
        lines.append((period, r.branch_code, zh, en, r.metric, spec.label_zh, spec.label_en, r.value,
                      r.numerator, r.denominator, revision.revision,
                      f"{revision.published_at:%Y-%m-%d %H:%M:%S}", revision.revision > 1,
                      revision.reason))
    return csv_export.to_csv_bytes(CSV_HEADER, lines)


def report_paths(settings: Settings, period: str) -> tuple[Path, Path]:
    folder = settings.reports_dir / "snapshots"
    return folder / f"kpi-{period}.html", folder / f"kpi-{period}.csv"


# --------------------------------------------------------------------------------------------------
# the snapshot


def _now() -> datetime:
    return datetime.now(mailer.LOCAL_TZ).replace(tzinfo=None, microsecond=0)


def read_published(settings: Settings, period: str) -> tuple[PeriodData, PeriodData, int, str | None]:
    if not settings.published_db.exists():
        raise SnapshotError(f"no published file at {settings.published_db}: run the pipeline "
                            "(`cs-warehouse run`) so that gates pass and the marts are published first")
    with duckdb.connect(str(settings.published_db), read_only=True) as con:
        current = read_period(con, period)
        previous = read_period(con, previous_period(period), as_of_metrics=False)
        return current, previous, published_revision(con, period), published_version(con)


@dataclass(frozen=True)
class Recorded:
    period: str
    revision: Revision
    rows: int
    in_published: int  # the period's latest revision in the published file before this run


def record_period(settings: Settings, period: str) -> Recorded:
    """Step 1: the period's KPIs from the published marts into the history (a new revision only if
    a number changed). SnapshotError if there is no published file or no data for the period."""
    parse_period(period)
    current, _previous, in_published, _version = read_published(settings, period)
    # The marts have a row for every branch x month of the calendar, so "rows exist" proves nothing:
    # ask for at least one real company-wide number.
    if not any(r.branch_code == COMPANY and r.value and not is_as_of_metric(r.metric) for r in current.rows):
        raise SnapshotError(f"the published marts in {settings.published_db} hold no KPI rows for {period} "
                            "(no satisfaction, complaint or call rows for that month)")
    with connect_work_db(settings.work_db) as con:
        revision = record_revision(con, period, current.rows, _now())
    return Recorded(period, revision, len(current.rows), in_published)


def latest_revision(settings: Settings, period: str) -> Revision:
    """The period's latest revision in the work file's history."""
    with connect_work_db(settings.work_db) as con:
        ensure_history_table(con)
        number, _rows, (recorded_at, reason) = latest_revision_rows(con, period)
    if not number:
        raise SnapshotError(f"no snapshot of {period} was recorded yet")
    return Revision(period, number, recorded_at, False, reason)


@dataclass(frozen=True)
class Delivered:
    html_path: Path
    csv_path: Path
    delivery: mailer.DeliveryOutcome
    missing: tuple[str, ...]


def report_input(settings: Settings, period: str, revision: Revision) -> ReportInput:
    """The period's numbers as published: what the company report and every branch page show."""
    current, previous, _in_published, version = read_published(settings, period)
    return ReportInput(period=period, previous_period=previous.period, revision=revision.revision,
                       recorded_at=revision.published_at, revision_reason=revision.reason,
                       rows=current.rows, changes=compare_periods(current.rows, previous.rows),
                       satisfaction=current.satisfaction, source_version=version, missing=current.missing,
                       satisfaction_rolling=current.satisfaction_rolling, headlines=current.headlines,
                       overdue_cases=current.overdue_cases, recovery=current.recovery,
                       voice=current.voice)


def render_and_deliver(settings: Settings, period: str, revision: Revision, *, resend: bool = False,
                       env: Mapping[str, str] | None = None) -> Delivered:
    """Step 3: the report and CSV of the period's numbers as published, and the e-mail (once)."""
    report = report_input(settings, period, revision)
    html = render_report(report)
    csv_bytes = snapshot_csv(period, revision, report.rows)
    html_path, csv_path = report_paths(settings, period)
    _write_if_changed(html_path, html.encode("utf-8"))
    _write_if_changed(csv_path, csv_bytes)
    smtp = settings.smtp if env is None else env
    # The mailed body is the strict form (tables, inline styles, PNG charts by Content-ID); the
    # browser report (SVG, CSS) and the CSV go along as attachments.
    content = mailer.MailContent(
        subject=mailer.subject_for(period, revision.revision),
        body=render_company_mail(report, html_path.name),
        text=plain_text_summary(report),
        attachments=(mailer.Attachment(html_path.name, html.encode("utf-8"), "text", "html"),
                     mailer.Attachment(csv_path.name, csv_bytes, "text", "csv")))
    delivery = mailer.deliver(settings.work_db, settings.outbox_dir, period=period, revision=revision.revision,
                              content=content, recipients=mailer.parse_recipients(smtp.get("CSWH_SMTP_TO")),
                              resend=resend, env=smtp)
    return Delivered(html_path, csv_path, delivery, tuple(report.missing))


@dataclass(frozen=True)
class BranchDelivered:
    branch: str
    html_path: Path
    csv_path: Path
    recipients: tuple[str, ...]
    delivery: mailer.DeliveryOutcome | None  # None: no recipient configured, the page is only written


def branch_report_paths(settings: Settings, period: str, branch: str) -> tuple[Path, Path]:
    folder = settings.reports_dir / "snapshots" / "branches"
    stem = f"kpi-{period}-{file_safe(branch)}"
    return folder / f"{stem}.html", folder / f"{stem}.csv"


def render_and_deliver_branches(settings: Settings, period: str, revision: Revision, *, resend: bool = False,
                                env: Mapping[str, str] | None = None) -> list[BranchDelivered]:
    """Every branch's page of the period (reports/snapshots/branches/), mailed once to the branch's
    recipients (``Settings.branch_recipients``); a branch without recipients gets its page only."""
    report = report_input(settings, period, revision)
    with duckdb.connect(str(settings.published_db), read_only=True) as con:
        topics = read_branch_topics(con, period)
    smtp = settings.smtp if env is None else env
    recipients_of = settings.with_overrides(smtp=smtp).branch_recipients
    out = []
    for code in report.branches():
        html_path, csv_path = branch_report_paths(settings, period, code)
        body = render_branch_page(report, code, topics.get(code, []), csv_path.name)
        rows = [r for r in report.rows if r.branch_code in (code, COMPANY)]
        csv_bytes = snapshot_csv(period, revision, rows)
        _write_if_changed(html_path, standalone_html(body).encode("utf-8"))
        _write_if_changed(csv_path, csv_bytes)
        recipients = recipients_of.get(code, ())
        delivery = None
        if recipients:
            content = mailer.MailContent(
                subject=mailer.subject_for(period, revision.revision, audience=code),
                body=body, text=branch_text_summary(report, code),
                attachments=(mailer.Attachment(html_path.name, standalone_html(body).encode("utf-8"), "text", "html"),
                             mailer.Attachment(csv_path.name, csv_bytes, "text", "csv")))
            delivery = mailer.deliver(settings.work_db, settings.outbox_dir, period=period,
                                      revision=revision.revision, content=content, recipients=recipients,
                                      audience=code, resend=resend, env=smtp)
        out.append(BranchDelivered(code, html_path, csv_path, recipients, delivery))
    return out


def branch_text_summary(report: ReportInput, branch: str) -> str:
    """The text/plain part of a branch's e-mail: its figures beside the company's."""
    lines = [f"客服质量月报 Customer-service KPI snapshot {report.period}, {branch} (revision {report.revision})", ""]
    for figure in branch_figures(report, branch):
        spec = metric_spec(figure.metric)
        company = format_value(figure.metric, figure.company.value) if figure.company else "–"
        rank = "" if figure.rank is None else f", rank {figure.rank} of {figure.ranked}"
        lines.append(f"- {spec.label_zh} {spec.label_en}: {format_value(figure.metric, figure.own.value)} "
                     f"(company {company}{rank})")
    lines += ["", "The full page is the HTML part of this message; the numbers are attached as CSV."]
    return "\n".join(lines)


def run_snapshot(settings: Settings, period: str, resend: bool = False, *, run_id: str | None = None,
                 env: Mapping[str, str] | None = None, publish=None) -> SnapshotResult:
    """The three steps in one call; ``publish(settings, run_id, revision) -> status`` carries the
    history to the published file (default ``_publish``, the job's step)."""
    run_id = run_id or f"snapshot-{period}-{uuid.uuid4().hex[:8]}"
    recorded = record_period(settings, period)
    publish_status = "up to date"
    if recorded.in_published != recorded.revision.revision:
        try:
            publish_status = (publish or _publish)(settings, run_id, recorded.revision)
        except Exception as exc:  # reported, retried next run: the history is safe in the work file
            publish_status = f"failed: {type(exc).__name__}: {exc}"
    delivered = render_and_deliver(settings, period, recorded.revision, resend=resend, env=env)
    revision = recorded.revision
    return SnapshotResult(period, revision.revision, revision.is_new, recorded.rows, delivered.html_path,
                          delivered.csv_path, publish_status, delivered.delivery, revision.reason, delivered.missing)
