"""The jobs, named for what they do (docs/architecture.md#jobs).

- ``warehouse_pipeline``: ingest (the months of a plan) -> dbt build and tests -> the quality gates
  -> publish, in one run, so that the blocking checks gate the publish step of the same run. The
  CLI, the landing sensor, the daily schedule and a launch from the UI all run this job.
- ``monthly_snapshot``: the KPI history of one month -> publish (after the mart gates, in the same
  run) -> the report and its e-mail. The CLI's ``snapshot`` and the monthly schedule run it.

Steps share one DuckDB work file (one writer at a time), so runs execute their steps in-process,
one after the other; the ``work_duckdb`` pool serialises steps across concurrent runs.
"""

from __future__ import annotations

import dagster as dg

from dagster_project.defs.conventions import PIPELINE_JOB, SNAPSHOT_JOB
from dagster_project.defs.publish.assets import PUBLISHED_KEY
from dagster_project.defs.report.assets import BRANCH_REPORTS_KEY, HISTORY_KEY, REPORT_KEY


def pipeline_selection() -> dg.AssetSelection:
    return dg.AssetSelection.all() - dg.AssetSelection.assets(HISTORY_KEY, REPORT_KEY, BRANCH_REPORTS_KEY)


def snapshot_selection(mart_checks: dg.AssetChecksDefinition) -> dg.AssetSelection:
    return (dg.AssetSelection.assets(HISTORY_KEY, PUBLISHED_KEY, REPORT_KEY, BRANCH_REPORTS_KEY)
            - dg.AssetSelection.checks_for_assets(PUBLISHED_KEY)
            | dg.AssetSelection.checks(mart_checks))


def build_jobs(mart_checks: dg.AssetChecksDefinition) -> list:
    """The two jobs (their partitions are their assets': the warehouse's months)."""
    pipeline = dg.define_asset_job(
        name=PIPELINE_JOB,
        description="Ingest new or changed landing files (a range of months), build every dbt model and test, "
                    "run the quality gates and publish the marts for BI if every blocking check passed.",
        selection=pipeline_selection(),
        executor_def=dg.in_process_executor,
    )
    snapshot = dg.define_asset_job(
        name=SNAPSHOT_JOB,
        description="The monthly KPI snapshot for management: history rows, publish (gated by the mart checks "
                    "in the same run), HTML report and e-mail, and one page per branch for its manager.",
        selection=snapshot_selection(mart_checks),
        executor_def=dg.in_process_executor,
    )
    return [pipeline, snapshot]
