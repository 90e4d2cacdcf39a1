"""The dbt command line as a Dagster resource: dagster-dbt's, minus two costs, plus the child's
environment from the settings.

- ``DbtCliResource`` asks the executable for its version with a ``dbt --version`` subprocess
  (1.8 s measured here: a second interpreter start, plus dbt's update check) before every
  invocation. The executable is the dbt of this interpreter's environment, so its version is the
  installed dbt-core's.
- It opens a dbt adapter in this process (0.6 s) that is only used to fetch column metadata
  afterwards; without column lineage nothing reads it.
- ``DbtCliResource.cli`` starts dbt with a copy of this process's environment and takes no other;
  ``build`` leaves the variables ``Settings.dbt_variables`` decides in the invocation's target folder,
  where the launcher (``lib/transform/dbt_child.py``) takes them over before dbt starts.

The first two rely on private members of dagster-dbt 0.29; ``tests/transform/test_dbt_project.py``
fails if they move, so an upgrade cannot silently bring the costs back.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

from dagster_dbt import DbtCliResource
from packaging import version

from dagster_project.lib.transform.dbt_project import DBT_EXECUTABLE, DBT_LAUNCHER, dbt_executable
from dagster_project.settings import DBT_PROJECT_DIR, Settings, write_child_env


class WarehouseDbtCliResource(DbtCliResource):
    """dagster-dbt's CLI resource for this project (see the module docstring)."""

    column_lineage: bool = False

    @cached_property
    def _cli_version(self) -> version.Version:
        if Path(self.dbt_executable).resolve() not in (DBT_EXECUTABLE.resolve(), DBT_LAUNCHER.resolve()):
            return super()._cli_version
        from dbt.version import __version__ as installed  # deferred: only the version string is needed, without dbt's CLI

        return version.parse(installed)

    def _initialize_dbt_core_adapter(self, args):
        if self.column_lineage:
            return super()._initialize_dbt_core_adapter(args)
        return None

    def build(self, settings: Settings, args: list[str], *, context, target_path: Path):
        """``cli(args)`` on ``settings``' work file: the child gets ``settings.dbt_variables()``."""
        write_child_env(target_path, settings.dbt_variables(parent_pid=os.getpid()))
        return self.cli(args, context=context, target_path=target_path)


def dbt_resource(settings: Settings) -> WarehouseDbtCliResource:
    return WarehouseDbtCliResource(project_dir=str(DBT_PROJECT_DIR), profiles_dir=str(DBT_PROJECT_DIR),
                                   dbt_executable=dbt_executable(), column_lineage=settings.dbt_column_lineage)
