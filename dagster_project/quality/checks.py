"""Blocking Dagster asset checks, one per Great Expectations suite in ``expectations/``.

A check validates its suite inside the work DuckDB file (GX SQL mode) and reports evaluated
expectations, failed ones, unexpected counts and samples as check metadata (visible in the UI).
Critical failures fail the check with severity ERROR, which blocks every downstream asset of the
same run (raw checks block dbt, mart checks block ``published/marts``). Warning-only failures pass
with severity WARN. Each check also refreshes the self-contained summary under
``reports/validation``.
"""


import json

import dagster as dg
from dagster import AssetCheckExecutionContext

from dagster_project.config import EXPECTATIONS_DIR, Settings
from dagster_project.quality.validate import SuiteResult, list_suites, load_suite_dict
from dagster_project.instance import WORK_DB_POOL



def check_result_from_suite(result: SuiteResult) -> dg.AssetCheckResult:
    """Dagster's view of a suite result. Pure mapping, unit-tested."""
    failed = result.failed_critical + result.failed_warning
    metadata: dict = {
        "suite": result.suite_name,
        "table": result.table,
        "evaluated": dg.MetadataValue.int(result.evaluated),
        "failed_critical": dg.MetadataValue.int(len(result.failed_critical)),
        "failed_warning": dg.MetadataValue.int(len(result.failed_warning)),
        "seconds": dg.MetadataValue.float(round(result.seconds, 3)),
    }
    if failed:
        metadata["failed_expectations"] = dg.MetadataValue.md(
            "| expectation | severity | unexpected | sample |\n|---|---|---|---|\n" + "\n".join(
                f"| `{o.label}` | {o.severity} | {'' if o.unexpected_count is None else o.unexpected_count} | "
                f"{(o.error or ', '.join(str(s) for s in o.sample[:5])).replace('|', '/')[:200]} |"
                for o in failed))
        metadata["unexpected_counts"] = dg.MetadataValue.json(
            {o.label: o.unexpected_count for o in failed})
        metadata["samples"] = dg.MetadataValue.json(
            json.loads(json.dumps({o.label: o.sample[:5] for o in failed}, default=str)))
    if result.failed_warning:
        metadata["warnings"] = dg.MetadataValue.json([o.summary() for o in result.failed_warning])
    if result.error:
        metadata["error"] = result.error
    passed = result.success
    severity = dg.AssetCheckSeverity.ERROR if not passed else (
        dg.AssetCheckSeverity.WARN if result.failed_warning else dg.AssetCheckSeverity.ERROR)
    description = None if passed and not failed else result.describe_failures()[:2000]
    return dg.AssetCheckResult(passed=passed, severity=severity, metadata=metadata,
                               description=description)


def _make_check(suite_name: str) -> dg.AssetChecksDefinition:
    data = load_suite_dict(suite_name)
    meta = data["meta"]
    asset_key = dg.AssetKey(list(meta["asset_key"]))

    @dg.asset_check(
        asset=asset_key,
        name=f"gx_{suite_name}",
        description=f"Great Expectations suite expectations/{suite_name}.json on {meta['table']} "
                    f"({len(data['expectations'])} expectations; critical ones block downstream).",
        blocking=True,
        pool=WORK_DB_POOL,
        metadata={"suite_file": f"expectations/{suite_name}.json", "table": meta["table"]},
    )
    def _gx_check(context: AssetCheckExecutionContext) -> dg.AssetCheckResult:
        from dagster_project.quality.validate import record_suite_result, validate_suite

        settings = Settings.from_env()
        result = validate_suite(settings.work_db, suite_name, settings=settings)
        record_suite_result(result, settings)
        if not result.success:
            context.log.error(result.describe_failures())
        elif result.failed_warning:
            context.log.warning(result.describe_failures())
        return check_result_from_suite(result)

    return _gx_check


GX_ASSET_CHECKS: list[dg.AssetChecksDefinition] = [_make_check(name) for name in list_suites(None, EXPECTATIONS_DIR)]
