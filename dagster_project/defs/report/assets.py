"""The monthly KPI snapshot as assets: history rows -> publish -> report (``lib/report/snapshot.py``).

- ``marts/kpi_snapshots`` (one monthly partition = one period): the period's KPIs, read from the
  published marts, appended to the history in the work file as a new revision if a number changed.
- ``published/marts`` (``defs/publish/assets.py``) carries the history to the published file; in
  the ``monthly_snapshot`` job the mart gates run before it, in the same run.
- ``reporting/kpi_report`` (monthly): the HTML report and CSV of the period, and the e-mail to
  management, sent once per period (a run tagged ``cswh/resend=true`` sends it again).
- ``reporting/branch_reports`` (monthly): one page per branch from the same numbers, mailed once
  per period to the branch's recipients (docs/bi.md#branch-reports).

All four write the work file or the published file, so they are in the ``work_duckdb`` pool.
"""

import dagster as dg

from dagster_project.defs.conventions import OWNERS, RESEND_TAG, WORK_DB_POOL
from dagster_project.defs.publish.assets import PUBLISHED_KEY
from dagster_project.lib.report.snapshot import (
    SnapshotError,
    latest_revision,
    record_period,
    render_and_deliver,
    render_and_deliver_branches,
)
from dagster_project.lib.transform.catalog import load_manifest
from dagster_project.lib.transform.dbt_project import prepare_manifest
from dagster_project.settings import Settings

HISTORY_KEY = dg.AssetKey(["marts", "kpi_snapshots"])
REPORT_KEY = dg.AssetKey(["reporting", "kpi_report"])
BRANCH_REPORTS_KEY = dg.AssetKey(["reporting", "branch_reports"])


def exposure_marts(exposure: str, manifest: dict | None = None) -> list[dg.AssetKey]:
    """The mart assets a dbt exposure (dbt/models/semantic/_exposures.yml) depends on: what a page
    management receives reads, so the lineage reaches it (docs/bi.md#lineage-to-what-management-receives)."""
    manifest = manifest if manifest is not None else load_manifest(prepare_manifest())
    node = next((e for e in (manifest.get("exposures") or {}).values() if e.get("name") == exposure), None)
    if node is None:
        raise ValueError(f"dbt exposure {exposure!r} is not in the manifest (dbt/models/semantic/_exposures.yml)")
    models = [uid.split(".")[-1] for uid in (node.get("depends_on") or {}).get("nodes") or []
              if uid.startswith("model.")]
    return [dg.AssetKey(["marts", name]) for name in sorted(models)]


def _period_and_resend(context: dg.AssetExecutionContext) -> tuple[str, bool]:
    """The partition's period (YYYY-MM) and whether the run asks to send its e-mail again."""
    return context.partition_key[:7], str(context.run.tags.get(RESEND_TAG, "")).lower() == "true"


def build_report_assets(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    @dg.asset(
        key=HISTORY_KEY,
        group_name="reporting",
        kinds={"python", "duckdb"},
        owners=OWNERS,
        partitions_def=partitions_def,
        pool=WORK_DB_POOL,
        description=(
            "Monthly KPI snapshot history (客服质量月报数据): the period's headline KPIs per branch and "
            "company-wide, read from the published marts and appended to marts.kpi_snapshots (append-only: "
            "late data adds revision n+1 with its reason; a period once recorded is never changed)."
        ),
    )
    def kpi_snapshots(context: dg.AssetExecutionContext, warehouse: dg.ResourceParam[Settings]) -> dg.MaterializeResult:
        period = context.partition_key[:7]
        try:
            recorded = record_period(warehouse, period)
        except SnapshotError as exc:
            raise dg.Failure(description=f"snapshot {period}: {exc}") from exc
        revision = recorded.revision
        return dg.MaterializeResult(metadata={
            "period": period,
            "revision": revision.revision,
            "new_revision": revision.is_new,
            "revision_reason": revision.reason or "",
            "dagster/row_count": recorded.rows,
        })

    def mailed_page(key: dg.AssetKey, exposure: str, description: str):
        """A monthly page rendered from the published file and mailed once per period; upstream: the
        published file and the marts its dbt exposure reads."""
        return dg.asset(key=key, group_name="reporting", kinds={"python", "html"}, owners=OWNERS,
                        partitions_def=partitions_def, deps=[PUBLISHED_KEY, *exposure_marts(exposure)],
                        pool=WORK_DB_POOL, description=description)

    @mailed_page(
        REPORT_KEY, "monthly_kpi_report",
        (
            "The monthly KPI report for management: reports/snapshots/kpi-YYYY-MM.html (+ .csv) from the "
            "published numbers, e-mailed once per period to CSWH_SMTP_TO (inline PNG charts, HTML and CSV attached; "
            "without CSWH_SMTP_HOST one .eml per recipient in the outbox; docs/bi.md#the-monthly-e-mail)."
        ),
    )
    def kpi_report(context: dg.AssetExecutionContext, warehouse: dg.ResourceParam[Settings]) -> dg.MaterializeResult:
        period, resend = _period_and_resend(context)
        try:
            delivered = render_and_deliver(warehouse, period, latest_revision(warehouse, period), resend=resend)
        except SnapshotError as exc:
            raise dg.Failure(description=f"snapshot {period}: {exc}") from exc
        metadata = {
            "period": period,
            "report": dg.MetadataValue.path(str(delivered.html_path)),
            "csv": dg.MetadataValue.path(str(delivered.csv_path)),
            # "delivered to N recipients ..." only after the SMTP server accepted them, else
            # "written to the outbox (N files) ...", "already sent ..." or "failed: ..."
            "email": delivered.delivery.detail,
            "not_in_published_file": ", ".join(delivered.missing),
        }
        if not delivered.delivery.ok:
            # The report is saved; failing the step makes the problem visible, and the next run of
            # this partition retries the delivery.
            raise dg.Failure(description=f"snapshot {period}: report saved, e-mail failed: {delivered.delivery.detail}",
                             metadata=metadata)
        context.log.info(f"snapshot {period}: e-mail {delivered.delivery.detail}")
        return dg.MaterializeResult(metadata=metadata)

    @mailed_page(
        BRANCH_REPORTS_KEY, "branch_reports",
        (
            "One monthly page per branch for its manager (机构月报): the branch against the company and its peers, "
            "its weakest stage cells, its overdue follow-up cases and its top comment topics, from the same published "
            "numbers as the company report; reports/snapshots/branches/kpi-YYYY-MM-<branch>.html (+ .csv), e-mailed "
            "once per period to the branch's CSWH_SMTP_TO_<BRANCH> recipients (docs/bi.md#branch-reports)."
        ),
    )
    def branch_reports(context: dg.AssetExecutionContext, warehouse: dg.ResourceParam[Settings]) -> dg.MaterializeResult:
        period, resend = _period_and_resend(context)
        try:
            pages = render_and_deliver_branches(warehouse, period, latest_revision(warehouse, period), resend=resend)
        except SnapshotError as exc:
            raise dg.Failure(description=f"branch reports {period}: {exc}") from exc
        mailed = [p for p in pages if p.delivery is not None]
        failed = [p for p in mailed if not p.delivery.ok]
        metadata = {
            "period": period,
            "pages": len(pages),
            "folder": dg.MetadataValue.path(str(pages[0].html_path.parent)) if pages else "",
            "email": "; ".join(f"{p.branch}: {p.delivery.detail}" for p in mailed) or
                     "no branch has recipients (CSWH_SMTP_TO_<BRANCH>): pages written, nothing mailed",
            "not_mailed": ", ".join(p.branch for p in pages if p.delivery is None),
        }
        if failed:
            raise dg.Failure(description=f"branch reports {period}: pages saved, e-mail failed for "
                                         + ", ".join(p.branch for p in failed), metadata=metadata)
        return dg.MaterializeResult(metadata=metadata)

    return [kpi_snapshots, kpi_report, branch_reports]
