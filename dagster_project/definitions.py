"""Everything Dagster shows, assembled from the modules that define it (ingest -> transform ->
check -> publish -> report). No logic lives here."""

from __future__ import annotations

import dagster as dg

from dagster_project.defs import jobs
from dagster_project.defs.ingest.assets import INGEST_ASSETS, landing_sensor
from dagster_project.defs.progress import compact_logger
from dagster_project.defs.publish.assets import published_marts
from dagster_project.defs.quality.checks import GX_ASSET_CHECKS
from dagster_project.defs.report.assets import kpi_snapshot
from dagster_project.defs.report.schedules import build_schedules
from dagster_project.defs.resources import RESOURCES
from dagster_project.defs.transform.assets import cs_dbt_assets

defs = dg.Definitions(
    assets=[*INGEST_ASSETS, cs_dbt_assets, published_marts, kpi_snapshot],
    asset_checks=GX_ASSET_CHECKS,
    jobs=jobs.JOBS,
    schedules=build_schedules(jobs.daily_pipeline, jobs.monthly_snapshot),
    sensors=[landing_sensor],
    resources=RESOURCES,
    loggers={"compact": compact_logger},
)
