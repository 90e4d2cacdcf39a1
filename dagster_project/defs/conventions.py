"""Conventions every Dagster definition of the project shares."""

OWNERS = ["team:data-platform"]
# Every step that writes the work DuckDB file claims this pool; config/dagster.yaml limits it to 1.
WORK_DB_POOL = "work_duckdb"
# Run tags of a single run over a partition range (single-run backfill).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
