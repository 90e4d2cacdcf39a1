"""Alerts after each daily publish, as two assets of the pipeline job (``lib/report/alerts.py``,
docs/bi.md#alerts):

- ``marts/branch_alerts``: the alert conditions found in the work file's marts (control limits,
  follow-up cases), kept one row per condition in ``marts.branch_alerts``; upstream of
  ``published/marts``, which copies the table, so the alerts are listed in the published file;
- ``reporting/alert_emails``: after the publish, one e-mail per condition not mailed before (its
  branch's ``CSWH_SMTP_TO_<BRANCH>``, else ``CSWH_SMTP_TO``; the outbox without CSWH_SMTP_HOST).
"""

import dagster as dg

from dagster_project.defs.conventions import OWNERS, WORK_DB_POOL
from dagster_project.defs.publish.assets import PUBLISHED_KEY
from dagster_project.defs.report.assets import exposure_marts
from dagster_project.lib.report.alerts import record_alerts, send_alerts
from dagster_project.settings import Settings

ALERTS_KEY = dg.AssetKey(["marts", "branch_alerts"])
ALERT_EMAILS_KEY = dg.AssetKey(["reporting", "alert_emails"])


@dg.asset(
    key=ALERTS_KEY,
    group_name="reporting",
    kinds={"python", "duckdb"},
    owners=OWNERS,
    deps=exposure_marts("branch_alerts"),
    pool=WORK_DB_POOL,
    description=(
        "Branch alerts (机构预警): a stage cell outside the adjusted 95% control limits on the worse side for two "
        "consecutive months, a complaint rate above them for two consecutive months, or open overdue follow-up cases "
        "at or above CSWH_ALERT_OVERDUE_CASES (default 5); one row per condition with its evidence (n, interval, "
        "limit) in marts.branch_alerts, which publish copies into the published file (docs/bi.md#alerts)."
    ),
)
def branch_alerts(context: dg.AssetExecutionContext, warehouse: dg.ResourceParam[Settings]) -> dg.MaterializeResult:
    threshold = warehouse.alert_overdue_cases
    alerts, new = record_alerts(warehouse.work_db, threshold)
    return dg.MaterializeResult(metadata={
        "conditions": len(alerts),
        "new_conditions": ", ".join(new) or "none",
        "overdue_threshold": threshold,
        "dagster/row_count": len(alerts),
    })


@dg.asset(
    key=ALERT_EMAILS_KEY,
    group_name="reporting",
    kinds={"python", "email"},
    owners=OWNERS,
    deps=[PUBLISHED_KEY, ALERTS_KEY],
    pool=WORK_DB_POOL,
    description=(
        "One alert e-mail per condition listed in the published file's marts.branch_alerts, sent once (re-runs send "
        "nothing again: reporting.alert_deliveries in the work file) to the branch's CSWH_SMTP_TO_<BRANCH> recipients, "
        "else CSWH_SMTP_TO; without CSWH_SMTP_HOST one .eml per recipient in the outbox (docs/bi.md#alerts)."
    ),
)
def alert_emails(context: dg.AssetExecutionContext, warehouse: dg.ResourceParam[Settings]) -> dg.MaterializeResult:
    deliveries = send_alerts(warehouse.work_db, warehouse.published_db, warehouse.outbox_dir, env=warehouse.smtp,
                             branch_recipients=warehouse.branch_recipients)
    failed = [d for d in deliveries if d.status == "failed"]
    metadata = {
        "sent": len(deliveries) - len(failed),
        "email": "; ".join(f"{d.alert_key}: {d.detail}" for d in deliveries) or "no new alert",
    }
    if failed:
        raise dg.Failure(description="alert e-mail failed for " + ", ".join(d.alert_key for d in failed)
                         + " (the next run retries)", metadata=metadata)
    for d in deliveries:
        context.log.info(f"alert {d.alert_key}: {d.detail}")
    return dg.MaterializeResult(metadata=metadata)


ALERT_ASSETS = [branch_alerts, alert_emails]
