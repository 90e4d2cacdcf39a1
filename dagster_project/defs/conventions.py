"""Conventions every Dagster definition of the project shares (docs/architecture.md#dagster-definitions)."""

from datetime import timedelta

import dagster as dg

OWNERS = ["team:data-platform"]
TIMEZONE = "Asia/Shanghai"  # landing days, partitions and schedules are local (Shanghai) time
# Every step that writes the work DuckDB file claims this pool; config/dagster.yaml limits it to 1.
WORK_DB_POOL = "work_duckdb"
# Run tags of a single run over a partition range (a single-run backfill).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
PARTITION_TAG = "dagster/partition"
# The plan a run was launched for (lib/planning.py) and who launched it.
PLAN_TAG = "cswh/plan"
RESEND_TAG = "cswh/resend"

PIPELINE_JOB = "warehouse_pipeline"
SNAPSHOT_JOB = "monthly_snapshot"

# The freshness of what BI reads: the daily run publishes at 02:00 Shanghai time, so marts or a
# published file older than 30 hours mean a missed daily run (warning after 26 hours). One policy,
# applied to every mart and to the publish asset by defs/__init__.py.
FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=30), warn_window=timedelta(hours=26))
