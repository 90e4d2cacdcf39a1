"""The publish asset, ``published/marts``: write–audit–publish of the catalog's published marts.

It depends on every published mart (and the KPI history), so the blocking checks on those marts —
the error-severity dbt tests and the Great Expectations suites — gate it within the same run: it
runs only if every one of them passed, and ``publish`` refuses a check summary with a failed
blocking check anyway, then audits its candidate again before the atomic swap. It collects the
run's check evaluations into the manifest's check summary and lists the source files from the
ingest ledger. Its ``complete_inputs`` check (``defs/quality/checks.py``) then says whether the
version lacks any landing file.

Every change of the published file is a materialization of this asset: a run's publish, the
monthly snapshot's republish (in the ``monthly_snapshot`` job, its gates in the same run), and
``cs-warehouse rollback`` (recorded by ``record_published_version``), so the Dagster UI always
shows the version ``cs-warehouse publish-status`` prints.
"""

import dagster as dg

from dagster_project.defs.conventions import OWNERS, WORK_DB_POOL
from dagster_project.lib.publish.publish import ledger_source_files, publish
from dagster_project.lib.analysis import ANALYSIS_TABLES
from dagster_project.lib.transform.catalog import HISTORY_TABLES, load_manifest, published_marts
from dagster_project.lib.transform.dbt_project import prepare_manifest
from dagster_project.settings import Settings

PUBLISHED_KEY = dg.AssetKey(["published", "marts"])


def run_check_summary(instance: dg.DagsterInstance, run_id: str) -> dict:
    """Every asset-check evaluation of the run, as ``{"checks": [{name, asset, passed, severity}]}``."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION, limit=100_000).records
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


def version_metadata(version_id: str, row_counts: dict[str, int], sha256: str, published_path: str) -> dict:
    return {
        "version_id": version_id,
        "published_path": dg.MetadataValue.path(published_path),
        "sha256": sha256,
        "row_counts": dg.MetadataValue.json(row_counts),
        "dagster/row_count": dg.MetadataValue.int(sum(int(v) for v in row_counts.values())),
        "tables": dg.MetadataValue.int(len(row_counts)),
    }


@dg.asset(
    key=PUBLISHED_KEY,
    group_name="publish",
    kinds={"duckdb", "python"},
    owners=OWNERS,
    description="The catalog's published, PII-free marts copied into published.duckdb for BI tools "
                "(read-only, DuckDB 1.x-readable), with column comments and meta.publish_manifest. "
                "Runs only when every blocking check of the run passed; audits its candidate and "
                "swaps it in atomically, keeping the last 5 versions for rollback.",
    deps=[*(dg.AssetKey(["marts", name]) for name in published_marts(load_manifest(prepare_manifest()))),
          *(dg.AssetKey(["marts", name]) for name in ANALYSIS_TABLES),
          *(dg.AssetKey(["marts", name]) for name in HISTORY_TABLES)],
    pool=WORK_DB_POOL,
)
def published_marts_asset(context: dg.AssetExecutionContext, warehouse: dg.ResourceParam[Settings]) -> dg.MaterializeResult:
    run_id = context.run.run_id
    summary = run_check_summary(context.instance, run_id)
    result = publish(warehouse, run_id, summary, ledger_source_files(warehouse))
    return dg.MaterializeResult(metadata={
        **version_metadata(result.version_id, result.row_counts, result.sha256, str(result.published_path)),
        "action": "publish",
        "checks_passed": dg.MetadataValue.int(summary["passed"]),
        "versions_pruned": dg.MetadataValue.int(len(result.pruned)),
    })


def record_published_version(instance: dg.DagsterInstance, manifest: dict, sha256: str, path: str,
                             action: str, detail: str) -> None:
    """Record a change of the published file made outside a run (a rollback) as a materialization
    of ``published/marts``, so the instance shows what BI reads."""
    instance.report_runless_asset_event(dg.AssetMaterialization(
        asset_key=PUBLISHED_KEY, description=detail,
        metadata={**version_metadata(manifest["version_id"], manifest.get("row_counts") or {}, sha256, path),
                  "action": action, "run_id": str(manifest.get("run_id"))}))
