"""The publish asset: ``published/marts``.

It depends on every published mart asset, so the blocking Great Expectations checks (and the
error-severity dbt tests) on those marts gate it within the same run; it must therefore be in the
same job as the checks (``daily_pipeline``). It collects the run's check evaluations into the
manifest's check summary, lists the source files from the ingest ledger, and calls ``publish``,
which audits its candidate again before the atomic swap.
"""


from datetime import timedelta

import dagster as dg
from dagster import AssetExecutionContext
import duckdb

from dagster_project.settings import Settings
from dagster_project.lib.publish.publish import OPTIONAL_MARTS, PUBLISHED_MARTS, ledger_source_files, publish
from dagster_project.defs.conventions import OWNERS, WORK_DB_POOL



def run_check_summary(instance: dg.DagsterInstance, run_id: str) -> dict:
    """Every asset-check evaluation of the run, as ``{"checks": [{name, asset, passed, severity}]}``."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    checks = []
    for record in records:
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        checks.append({
            "name": evaluation.check_name,
            "asset": evaluation.asset_key.to_user_string(),
            "passed": bool(evaluation.passed),
            "severity": str(getattr(evaluation.severity, "value", evaluation.severity)),
        })
    return {"run_id": run_id, "checks": checks,
            "passed": sum(c["passed"] for c in checks), "failed": sum(not c["passed"] for c in checks)}


@dg.asset(
    key=["published", "marts"],
    group_name="publish",
    kinds={"duckdb", "python"},
    owners=OWNERS,
    description="The allow-listed, PII-free marts copied into published.duckdb for BI tools "
                "(read-only, DuckDB 1.x-readable), with column comments and meta.publish_manifest. "
                "Runs only when every blocking check of the run passed; audits its candidate and "
                "swaps it in atomically, keeping the last 5 versions for rollback.",
    deps=[dg.AssetKey(["marts", name]) for name in PUBLISHED_MARTS if name not in OPTIONAL_MARTS],
    pool=WORK_DB_POOL,
    freshness_policy=dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=30),
                                                    warn_window=timedelta(hours=26)),
)
def published_marts(context: AssetExecutionContext) -> dg.MaterializeResult:
    settings = Settings.from_env()
    summary = run_check_summary(context.instance, context.run_id)
    result = publish(settings, context.run_id, summary, ledger_source_files(settings))
    return dg.MaterializeResult(metadata={
        "version_id": result.version_id,
        "published_path": dg.MetadataValue.path(str(result.published_path)),
        "sha256": result.sha256,
        "row_counts": dg.MetadataValue.json(result.row_counts),
        "rows_total": dg.MetadataValue.int(sum(result.row_counts.values())),
        "checks_passed": dg.MetadataValue.int(summary["passed"]),
        "versions_pruned": dg.MetadataValue.int(len(result.pruned)),
    })
