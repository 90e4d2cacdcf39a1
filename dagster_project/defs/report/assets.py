"""The ``kpi_snapshot`` asset: one monthly partition = one period's snapshot (``snapshot.run_snapshot``).

It reads the published marts, so it depends on the publish asset; it writes the history table in the
work file, so it is in the ``work_duckdb`` pool (one writer at a time). A run with the tag
``cswh/resend=true`` sends the e-mail again.
"""

import os

import dagster as dg

from dagster_project.settings import Settings
from dagster_project.defs.conventions import OWNERS, WORK_DB_POOL

RESEND_TAG = "cswh/resend"

# The same definition as the ingest module's MONTHLY_PARTITIONS (same start, Asia/Shanghai), built
# here so that this module never imports the ingest assets; a test checks that the two are equal, as
# the monthly_snapshot job requires.
SNAPSHOT_PARTITIONS = dg.MonthlyPartitionsDefinition(
    start_date=os.environ.get("CSWH_PARTITIONS_START", "2024-01-01")[:7] + "-01", timezone="Asia/Shanghai")


@dg.asset(
    name="kpi_snapshot",
    group_name="reporting",
    kinds={"python", "duckdb"},
    owners=OWNERS,
    partitions_def=SNAPSHOT_PARTITIONS,
    deps=[dg.AssetKey(["published", "marts"])],
    pool=WORK_DB_POOL,
    description=(
        "Monthly KPI snapshot for management (客服质量月报): appends the period's headline KPIs per "
        "branch and company-wide to marts.kpi_snapshots (append-only; late data adds a flagged "
        "revision), publishes it, renders reports/snapshots/kpi-YYYY-MM.html (+ .csv) and e-mails "
        "it once per period (SMTP from CSWH_SMTP_*, else an .eml in the outbox)."
    ),
)
def kpi_snapshot(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    from dagster_project.lib.report.snapshot import SnapshotError, run_snapshot

    period = context.partition_key[:7]
    resend = str(context.run.tags.get(RESEND_TAG, "")).lower() == "true"
    try:
        result = run_snapshot(Settings.from_env(), period, resend=resend, run_id=context.run_id)
    except SnapshotError as exc:
        raise dg.Failure(description=f"snapshot {period}: {exc}") from exc
    metadata = {
        "period": period,
        "revision": result.revision,
        "new_revision": result.new_revision,
        "revision_reason": result.revision_reason or "",
        "dagster/row_count": result.rows,
        "report": dg.MetadataValue.path(str(result.html_path)),
        "csv": dg.MetadataValue.path(str(result.csv_path)),
        "publish": result.publish_status,
        "email": f"{result.delivery.status}: {result.delivery.detail}",
        "not_in_published_file": ", ".join(result.missing),
    }
    if not result.ok:
        # History and report are saved; failing the step makes the problem visible, and the next
        # run of this partition retries the publish / delivery.
        raise dg.Failure(description=f"snapshot {period} saved, but publish or e-mail failed: "
                                     f"publish {result.publish_status}; e-mail {result.delivery.detail}",
                         metadata=metadata)
    context.log.info(f"snapshot {period}: revision {result.revision}, e-mail {result.delivery.status}")
    return dg.MaterializeResult(metadata=metadata)
