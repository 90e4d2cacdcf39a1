"""The resources every asset, check, sensor and schedule gets.

- ``warehouse``: the project's ``Settings`` (locations, budgets, switches). The definitions are
  built for one ``Settings`` value (``defs.build_definitions(settings)``): ``definitions.py`` builds
  them from the environment for ``dagster dev`` and the daemon, the CLI and the tests for the
  settings they hold. Code asks for it as ``warehouse: dg.ResourceParam[Settings]``; initializing
  it makes its DuckDB budget the process's (``Settings.activate``).
- ``dbt``: the dbt command line (``defs/transform/resource.py``).
"""

from __future__ import annotations

import dagster as dg

from dagster_project.defs.transform.resource import dbt_resource
from dagster_project.settings import Settings


def warehouse_resource(settings: Settings) -> dg.ResourceDefinition:
    @dg.resource(description=(
        f"The warehouse's settings: landing files {settings.landing_dir}, work and published DuckDB files "
        f"in {settings.warehouse_dir}, reports in {settings.reports_dir} (docs/architecture.md#settings)."))
    def warehouse(_init_context) -> Settings:
        return settings.activate()

    return warehouse


def build_resources(settings: Settings) -> dict[str, object]:
    return {"warehouse": warehouse_resource(settings), "dbt": dbt_resource(settings)}
