"""The local Dagster instance under ``$DAGSTER_HOME`` (default ``data/dagster_home``).

Its ``dagster.yaml`` comes from ``config/dagster.yaml`` (telemetry off; one writer at a time on
the work DuckDB file through the ``work_duckdb`` concurrency pool).
"""

from __future__ import annotations

import shutil

from dagster_project.config import REPO_ROOT, Settings

INSTANCE_TEMPLATE = REPO_ROOT / "config" / "dagster.yaml"


def prepare_dagster_home(settings: Settings) -> None:
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    target = settings.dagster_home / "dagster.yaml"
    if not target.exists() or target.read_bytes() != INSTANCE_TEMPLATE.read_bytes():
        shutil.copyfile(INSTANCE_TEMPLATE, target)

# Conventions every Dagster definition of the project shares.
OWNERS = ["team:data-platform"]
# Every step that writes the work DuckDB file claims this pool; config/dagster.yaml limits it to 1.
WORK_DB_POOL = "work_duckdb"
# Run tags of a single run over a partition range (single-run backfill).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
