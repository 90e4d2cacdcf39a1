"""The local Dagster instance under ``$DAGSTER_HOME`` (default ``data/dagster_home``).

Its ``dagster.yaml`` comes from ``config/dagster.yaml`` (telemetry off; one writer at a time on
the work DuckDB file through the ``work_duckdb`` concurrency pool).
"""

from __future__ import annotations

import shutil

from dagster_project.settings import REPO_ROOT, Settings

INSTANCE_TEMPLATE = REPO_ROOT / "config" / "dagster.yaml"


def prepare_dagster_home(settings: Settings) -> None:
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    target = settings.dagster_home / "dagster.yaml"
    if not target.exists() or target.read_bytes() != INSTANCE_TEMPLATE.read_bytes():
        shutil.copyfile(INSTANCE_TEMPLATE, target)
