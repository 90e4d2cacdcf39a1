"""Dagster resources.

``WarehouseResource`` hands assets the project's ``Settings`` (``Settings.from_env()``, so the UI,
the CLI and dbt's profile all see the same files); its fields override single locations, which the
tests use to point a run at a temporary folder.

``RESOURCES`` (what ``definitions.py`` binds) is built on first access so that importing this
module for ``WarehouseResource`` does not import the dbt project.
"""

from __future__ import annotations

import dagster as dg

from dagster_project.settings import Settings, resolve_path


class WarehouseResource(dg.ConfigurableResource):
    """Where the landing files and the work DuckDB file are (defaults from the environment)."""

    landing_dir: str = ""
    warehouse_dir: str = ""

    def settings(self) -> Settings:
        settings = Settings.from_env()
        changes = {}
        if self.landing_dir:
            changes["landing_dir"] = resolve_path(self.landing_dir)
        if self.warehouse_dir:
            changes["warehouse_dir"] = resolve_path(self.warehouse_dir)
        return settings.with_overrides(**changes) if changes else settings


def build_resources() -> dict[str, object]:
    from dagster_project.defs.transform.assets import DBT_RESOURCE

    return {"warehouse": WarehouseResource(), "dbt": DBT_RESOURCE}


def __getattr__(name: str):
    if name == "RESOURCES":
        resources = build_resources()
        globals()["RESOURCES"] = resources
        return resources
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
