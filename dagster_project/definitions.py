"""Everything Dagster shows, assembled from ``defs/`` in the data's order (ingest -> transform ->
quality -> publish -> report) for one ``Settings`` value. No logic lives here.

``defs`` is what ``dagster dev``, the daemon and the run workers load (``pyproject.toml``:
``[tool.dagster] module_name``): the definitions for the settings of the environment. The CLI and
the tests call ``build_definitions`` with the settings they hold.
"""

from __future__ import annotations

import dagster as dg

from dagster_project.defs.analysis.assets import ANALYSIS_ASSETS
from dagster_project.defs.conventions import FRESHNESS
from dagster_project.defs.ingest.assets import build_ingest_assets
from dagster_project.defs.ingest.sensor import build_landing_sensor
from dagster_project.defs.jobs import build_jobs
from dagster_project.defs.partitions import warehouse_partitions
from dagster_project.defs.progress import compact_logger
from dagster_project.defs.publish.assets import PUBLISHED_KEY, published_marts_asset
from dagster_project.defs.quality.checks import build_mart_checks, build_raw_checks, complete_inputs
from dagster_project.defs.report.alerts import ALERT_ASSETS
from dagster_project.defs.report.assets import build_report_assets
from dagster_project.defs.report.schedules import build_schedules
from dagster_project.defs.resources import build_resources
from dagster_project.defs.transform.assets import cs_dbt_assets
from dagster_project.lib.planning import landing_days
from dagster_project.settings import Settings


def _with_freshness(spec: dg.AssetSpec) -> dg.AssetSpec:
    """The one freshness policy, on what BI reads: every mart and the published file."""
    if spec.key.path[0] == "marts" or spec.key == PUBLISHED_KEY:
        return spec.replace_attributes(freshness_policy=FRESHNESS)
    return spec


def build_definitions(settings: Settings) -> dg.Definitions:
    partitions = warehouse_partitions(settings.partitions_start, landing_days(settings))
    ingest = build_ingest_assets(partitions)
    transform_and_publish = dg.map_asset_specs(_with_freshness, [cs_dbt_assets, *ANALYSIS_ASSETS, *ALERT_ASSETS, published_marts_asset])
    report = build_report_assets(partitions)
    raw_checks, mart_checks = build_raw_checks(), build_mart_checks()
    pipeline, snapshot = build_jobs(mart_checks)
    pipeline_keys = frozenset({*(a.key for a in ingest), *cs_dbt_assets.keys, *(a.key for a in ANALYSIS_ASSETS),
                               *(a.key for a in ALERT_ASSETS), PUBLISHED_KEY})
    return dg.Definitions(
        assets=[*ingest, *transform_and_publish, *report],
        asset_checks=[raw_checks, mart_checks, complete_inputs],
        jobs=[pipeline, snapshot],
        schedules=build_schedules(pipeline, snapshot, partitions, pipeline_keys),
        sensors=[build_landing_sensor(pipeline, partitions, pipeline_keys)],
        resources=build_resources(settings),
        loggers={"compact": compact_logger},
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(Settings.from_env())
