"""The quality gates as blocking Dagster asset checks (docs/architecture.md#quality-gates).

**Great Expectations suites** (``expectations/*.json``), one check ``gx_<suite>`` per suite on the
suite's asset. A check validates its suite inside the work DuckDB file (GX SQL mode) and reports
evaluated expectations, failed ones, unexpected counts and samples as metadata. A failed critical
expectation fails the check with severity ERROR, which blocks every downstream asset of the same
run (raw checks block dbt, mart checks block ``published/marts``); warning-only failures pass with
severity WARN. The suites of one layer run in one step (a multi-asset check), which opens one GX
context and one connection for all of them and refreshes ``reports/validation`` once:

- ``gx_raw``: the raw suites validate what the run loaded, the partitions of the files whose ledger
  entry carries the run's id (a daily run checks the day it loaded, not two years again); a source
  that loaded nothing in the run has nothing new to check;
- ``gx_marts``: the mart suites validate the whole marts, which every build rewrites.

**complete_inputs** on ``published/marts``: after publish, whether the published version was built
from every landing file. A stale partition (a file that could not be read or was held back, whose
partition keeps its earlier load) fails it with severity ERROR, so the run ends failed and names
the file although the readable files were loaded, built and published; entries that are outside
the contract or gone (ignored, deleted) fail it as a warning. It is blocking only to make the run's
status say so: nothing is downstream of the publish asset in the pipeline.
"""

import json

import dagster as dg

from dagster_project.defs.conventions import WORK_DB_POOL
from dagster_project.lib.planning import landing_problems, partitions_loaded_by_run
from dagster_project.lib.quality.results import SuiteResult
from dagster_project.lib.quality.validate import list_suites, load_suite_dict, record_suite_results, validate_suites
from dagster_project.settings import EXPECTATIONS_DIR, Settings

PUBLISHED_KEY = dg.AssetKey(["published", "marts"])


def check_name(suite_name: str) -> str:
    return f"gx_{suite_name}"


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


def suite_check_spec(suite_name: str) -> dg.AssetCheckSpec:
    data = load_suite_dict(suite_name)
    meta = data["meta"]
    scope = " (the rows this run loaded)" if meta.get("partition_column") else ""
    return dg.AssetCheckSpec(
        name=check_name(suite_name),
        asset=dg.AssetKey(list(meta["asset_key"])),
        description=f"Great Expectations suite expectations/{suite_name}.json on {meta['table']}{scope} "
                    f"({len(data['expectations'])} expectations; critical ones block downstream).",
        blocking=True,
        metadata={"suite_file": f"expectations/{suite_name}.json", "table": meta["table"]},
    )


def _log_failures(context, result: SuiteResult) -> None:
    if not result.success:
        context.log.error(result.describe_failures())
    elif result.failed_warning:
        context.log.warning(result.describe_failures())


def build_raw_checks() -> dg.AssetChecksDefinition:
    suites = list_suites("raw", EXPECTATIONS_DIR)
    specs = [suite_check_spec(s) for s in suites]
    suite_of = {dg.AssetCheckKey(spec.asset_key, spec.name): s for spec, s in zip(specs, suites)}
    source_of = {s: load_suite_dict(s)["meta"]["asset_key"][1] for s in suites}

    @dg.multi_asset_check(name="gx_raw", specs=specs, can_subset=True, pool=WORK_DB_POOL,
                          description="Great Expectations suites of the raw sources, on the rows the run loaded.")
    def gx_raw(context: dg.AssetCheckExecutionContext, warehouse: dg.ResourceParam[Settings]):
        selected = [suite_of[key] for key in suite_of if key in context.selected_asset_check_keys]
        loaded = partitions_loaded_by_run(warehouse, context.run.run_id)
        scoped = {s: loaded[source_of[s]] for s in selected if loaded.get(source_of[s])}
        results = validate_suites(warehouse.work_db, list(scoped), partitions=scoped) if scoped else []
        if results:
            record_suite_results(results, warehouse)
        for result in results:
            _log_failures(context, result)
            yield check_result_from_suite(result)
        for suite in selected:
            if suite not in scoped:
                yield dg.AssetCheckResult(
                    asset_key=dg.AssetKey(["raw", source_of[suite]]), check_name=check_name(suite), passed=True,
                    metadata={"suite": suite, "evaluated": dg.MetadataValue.int(0)},
                    description="This run loaded no file of the source: nothing new to validate.")

    return gx_raw


def build_mart_checks() -> dg.AssetChecksDefinition:
    suites = list_suites("marts", EXPECTATIONS_DIR)
    specs = [suite_check_spec(s) for s in suites]
    suite_of = {dg.AssetCheckKey(spec.asset_key, spec.name): s for spec, s in zip(specs, suites)}

    @dg.multi_asset_check(name="gx_marts", specs=specs, can_subset=True, pool=WORK_DB_POOL,
                          description="Great Expectations suites of the marts BI reads; they gate the publish.")
    def gx_marts(context: dg.AssetCheckExecutionContext, warehouse: dg.ResourceParam[Settings]):
        selected = [suite_of[key] for key in suite_of if key in context.selected_asset_check_keys]
        results = validate_suites(warehouse.work_db, selected)
        record_suite_results(results, warehouse)
        for result in results:
            _log_failures(context, result)
            yield check_result_from_suite(result)

    return gx_marts


@dg.asset_check(asset=PUBLISHED_KEY, name="complete_inputs", blocking=True,
                description="The published version was built from every landing file: no partition is stale "
                            "(unreadable or held-back file), no landing entry was ignored or is gone.")
def complete_inputs(warehouse: dg.ResourceParam[Settings]) -> dg.AssetCheckResult:
    problems = landing_problems(warehouse)
    stale = [p for p in problems if p.stale]
    noted = [p for p in problems if not p.stale]
    metadata = {"stale_partitions": dg.MetadataValue.int(len(stale)),
                "ignored_or_deleted": dg.MetadataValue.int(len(noted))}
    if problems:
        metadata["entries"] = dg.MetadataValue.md("| path | status | reason |\n|---|---|---|\n" + "\n".join(
            f"| `{p.path}` | {p.status} | {p.reason.replace('|', '/')[:200]} |" for p in problems[:50]))
    if not problems:
        return dg.AssetCheckResult(passed=True, metadata=metadata)
    description = "; ".join(p.describe() for p in problems[:10])[:2000]
    return dg.AssetCheckResult(passed=False, metadata=metadata, description=description,
                               severity=dg.AssetCheckSeverity.ERROR if stale else dg.AssetCheckSeverity.WARN)


def build_checks() -> list[dg.AssetChecksDefinition]:
    return [build_raw_checks(), build_mart_checks(), complete_inputs]
