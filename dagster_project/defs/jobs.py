"""Jobs, named for what they do.

A run targets one partitions definition, so the daily sources and the monthly audit workbooks are
ingested by different jobs; everything downstream (dbt, gates, publish) runs in ``daily_pipeline``
so that blocking checks gate the publish step within the same run.
"""

from __future__ import annotations

import dagster as dg

from dagster_project.defs.ingest.assets import DAILY_PARTITIONS, INGEST_ASSETS, INGEST_JOBS, audits_asset
from dagster_project.defs.report.assets import kpi_snapshot

# Steps share one DuckDB work file (one writer at a time), so runs execute their steps in-process,
# one after the other; the `work_duckdb` pool serialises steps across concurrent runs.
daily_pipeline = dg.define_asset_job(
    name="daily_pipeline",
    description="Ingest the day's landing files (five daily sources), build every dbt model and test, "
    "run the Great Expectations gates and publish the marts for BI if every blocking check passed.",
    selection=dg.AssetSelection.all() - dg.AssetSelection.assets(audits_asset, kpi_snapshot),
    partitions_def=DAILY_PARTITIONS,
    executor_def=dg.in_process_executor,
)

# The same build, gate and publish without the ingest steps, unpartitioned. `cs-warehouse run` loads
# a backlog of days with `ingest_all` and then runs this: a partitioned run stamps its whole
# partition range on every planned check (Dagster writes one planned-check row per check per day:
# ~300k rows and a minute of planning for two years), which an unpartitioned run does not.
build_and_publish = dg.define_asset_job(
    name="build_and_publish",
    description="Build every dbt model and test, run the Great Expectations gates on the marts and "
    "publish them for BI if every blocking check passed (ingest runs separately).",
    selection=dg.AssetSelection.all() - dg.AssetSelection.assets(*INGEST_ASSETS, kpi_snapshot),
    executor_def=dg.in_process_executor,
)

monthly_snapshot = dg.define_asset_job(
    name="monthly_snapshot",
    description="The monthly KPI snapshot for management: history rows, HTML report, e-mail.",
    selection=dg.AssetSelection.assets(kpi_snapshot),
    executor_def=dg.in_process_executor,
)

JOBS = [daily_pipeline, build_and_publish, *INGEST_JOBS, monthly_snapshot]
