"""Blocking Dagster asset checks, one per Great Expectations suite in ``expectations/``.

A check validates its suite inside the work DuckDB file (GX SQL mode) and reports evaluated
expectations, failed ones, unexpected counts and samples as check metadata (visible in the UI).
Critical failures fail the check with severity ERROR, which blocks every downstream asset of the
same run (raw checks block dbt, mart checks block ``published/marts``). Warning-only failures pass
with severity WARN.

The checks of suites that run together are executed by one step (a multi-asset check): the five
daily raw sources, the monthly audit workbooks, and the marts. One step opens one GX context and
one connection for all its suites instead of one each (GX's context, engine and table reflection
cost about 0.2 s per suite), and refreshes the summary under ``reports/validation`` once. Each
suite still reports as its own check, ``gx_<suite>``, on its own asset, and a run that selects
only some of the assets (the sensor requests only sources with new files) runs only their checks.

Raw checks validate the partitions of the run (``meta.partition_column`` suites; see
``validate.scope_suite``): a daily run checks the day it loaded, not two years again. Mart checks
always validate the whole mart, because every build rewrites it.
"""


import json

import dagster as dg
from dagster import AssetCheckExecutionContext

from dagster_project.settings import EXPECTATIONS_DIR, Settings
from dagster_project.defs.conventions import RANGE_END_TAG, RANGE_START_TAG, WORK_DB_POOL
from dagster_project.lib.quality.validate import SuiteResult, list_suites, load_suite_dict

PARTITION_TAG = "dagster/partition"


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
    return dg.AssetCheckResult(asset_key=dg.AssetKey(list(result.asset_key)), check_name=check_name(result.suite_name),
                               passed=passed, severity=severity, metadata=metadata, description=description)


def check_name(suite_name: str) -> str:
    return f"gx_{suite_name}"


def run_partition_keys(tags: dict[str, str], partitions_def: dg.PartitionsDefinition | None) -> list[str] | None:
    """The partition keys a run materializes, from its tags (a single partition, or a range of a
    single-run backfill); None for an unpartitioned run. Pure, unit-tested."""
    if partitions_def is None:
        return None
    if tags.get(PARTITION_TAG):
        return [tags[PARTITION_TAG]]
    if tags.get(RANGE_START_TAG) and tags.get(RANGE_END_TAG):
        return list(partitions_def.get_partition_keys_in_range(
            dg.PartitionKeyRange(tags[RANGE_START_TAG], tags[RANGE_END_TAG])))
    return None


def suite_check_spec(suite_name: str) -> dg.AssetCheckSpec:
    data = load_suite_dict(suite_name)
    meta = data["meta"]
    scope = " (the run's partitions)" if meta.get("partition_column") else ""
    return dg.AssetCheckSpec(
        name=check_name(suite_name),
        asset=dg.AssetKey(list(meta["asset_key"])),
        description=f"Great Expectations suite expectations/{suite_name}.json on {meta['table']}{scope} "
                    f"({len(data['expectations'])} expectations; critical ones block downstream).",
        blocking=True,
        metadata={"suite_file": f"expectations/{suite_name}.json", "table": meta["table"]},
    )


def build_suite_checks(name: str, suite_names: list[str], description: str,
                       partitions_def: dg.PartitionsDefinition | None = None) -> dg.AssetChecksDefinition:
    """One step that validates ``suite_names`` together and reports one check per suite."""
    specs = [suite_check_spec(s) for s in suite_names]
    suite_of = {dg.AssetCheckKey(spec.asset_key, spec.name): s for spec, s in zip(specs, suite_names)}

    @dg.multi_asset_check(name=name, specs=specs, description=description, can_subset=True, pool=WORK_DB_POOL)
    def _checks(context: AssetCheckExecutionContext):
        from dagster_project.lib.quality.validate import record_suite_results, validate_suites

        settings = Settings.from_env()
        selected = [suite_of[key] for key in suite_of if key in context.selected_asset_check_keys]
        partitions = run_partition_keys(dict(context.run.tags), partitions_def)
        results = validate_suites(settings.work_db, selected, partitions=partitions)
        record_suite_results(results, settings)
        for result in results:
            if not result.success:
                context.log.error(result.describe_failures())
            elif result.failed_warning:
                context.log.warning(result.describe_failures())
            yield check_result_from_suite(result)

    return _checks


def _raw_suites(partitioning: str) -> list[str]:
    """The raw suites whose source has this partitioning (the suite's asset is raw/<source>)."""
    from dagster_project.lib.ingest import CONTRACTS

    return [n for n in list_suites("raw", EXPECTATIONS_DIR)
            if CONTRACTS[load_suite_dict(n)["meta"]["asset_key"][1]].partitioning == partitioning]


def _gx_asset_checks() -> list[dg.AssetChecksDefinition]:
    from dagster_project.defs.ingest.assets import DAILY_PARTITIONS, MONTHLY_PARTITIONS

    return [
        build_suite_checks("gx_raw_daily_sources", _raw_suites("daily"),
                           "Great Expectations suites of the five daily raw sources, on the days the run loaded.",
                           DAILY_PARTITIONS),
        build_suite_checks("gx_raw_audits", _raw_suites("monthly"),
                           "Great Expectations suite of the monthly mystery-shopping audit workbooks.",
                           MONTHLY_PARTITIONS),
        build_suite_checks("gx_marts", list_suites("marts", EXPECTATIONS_DIR),
                           "Great Expectations suites of the marts BI reads; they gate the publish."),
    ]


GX_ASSET_CHECKS: list[dg.AssetChecksDefinition] = _gx_asset_checks()
