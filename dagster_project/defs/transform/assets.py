"""The dbt project as Dagster assets: one asset per seed and model, dbt tests as asset checks.

``CsDbtTranslator`` places the dbt graph under the ingest assets: each dbt source ``raw.<table>``
gets the asset key ``["raw", <table>]``, the key of the ingest asset that loads it, so staging
models depend on the ingest assets in one graph. Models and seeds are keyed by layer
(``["staging", m]``, ``["intermediate", m]``, ``["marts", m]``, ``["reference", seed]``) and grouped
by layer. ``dbt build`` runs models and their tests in DAG order; tests of severity ``error``
become blocking asset checks, so a failing test stops everything downstream in the same run
(publish included).

Column schemas (names, types, descriptions) come from the manifest as definition metadata. With
``CSWH_DBT_COLUMN_LINEAGE=1`` each materialization also carries the built table's column schema and
column lineage (``fetch_column_metadata``), so the UI shows which upstream columns feed each mart
column; it is off by default because it roughly doubles the dbt step on the tiny data set
(about 49 s -> 89 s measured), mostly sqlglot parsing per model.
"""


import os
import sys
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping, Optional

import dagster as dg
from dagster import AssetExecutionContext
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets
from packaging import version

from dagster_project.settings import DBT_PROJECT_DIR
from dagster_project.defs.resources import WarehouseResource
from dagster_project.lib.transform.dbt_child import PARENT_PID_VARIABLE
from dagster_project.lib.ingest.guard import use_private_umask
from dagster_project.lib.transform.dbt_project import (
    build_command, clear_replaced_partitions, dbt_target_dir, full_refresh_reasons, prepare_manifest,
    record_salt_fingerprint, replaced_partitions,
)
from dagster_project.defs.conventions import OWNERS, WORK_DB_POOL


# Marts feed BI and the daily publish (02:00): a mart older than 30 hours means a missed daily run.
MART_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(hours=30), warn_window=timedelta(hours=26)
)

# Model folder (first path part under models/) -> layer name used for keys and groups.
LAYERS = ("staging", "intermediate", "marts")


def layer_of(dbt_resource_props: Mapping[str, Any]) -> str:
    """staging / intermediate / marts for models (from the folder under models/), reference for
    seeds, raw for sources."""
    resource_type = dbt_resource_props.get("resource_type")
    if resource_type == "source":
        return "raw"
    if resource_type == "seed":
        return "reference"
    fqn = dbt_resource_props.get("fqn") or []
    for part in fqn[1:]:
        if part in LAYERS:
            return part
    return dbt_resource_props.get("config", {}).get("schema") or "dbt"


class CsDbtTranslator(DagsterDbtTranslator):
    def __init__(self) -> None:
        super().__init__(DagsterDbtTranslatorSettings(enable_asset_checks=True))

    def get_asset_spec(self, manifest, unique_id, project):
        spec = super().get_asset_spec(manifest, unique_id, project)
        if spec.key.path[0] == "marts":
            spec = spec.replace_attributes(freshness_policy=MART_FRESHNESS)
        return spec

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props.get("resource_type") == "source":
            # The ingest asset that loads raw.<table> has exactly this key.
            return dg.AssetKey(["raw", dbt_resource_props["name"]])
        return dg.AssetKey([layer_of(dbt_resource_props), dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> Optional[str]:
        return layer_of(dbt_resource_props)

    def get_owners(self, dbt_resource_props: Mapping[str, Any]):
        return OWNERS

    def get_tags(self, dbt_resource_props: Mapping[str, Any]) -> Mapping[str, str]:
        return {**super().get_tags(dbt_resource_props), "layer": layer_of(dbt_resource_props)}


# The dbt next to this interpreter (the virtualenv's), whether or not the venv is on PATH, started
# through the project's launcher so that it dies with the step that started it (dbt_child.py).
DBT_EXECUTABLE = Path(sys.executable).with_name("dbt")
DBT_LAUNCHER = Path(sys.executable).with_name("cs-warehouse-dbt")

def column_lineage_enabled() -> bool:
    return os.environ.get("CSWH_DBT_COLUMN_LINEAGE", "").strip().lower() in {"1", "true", "yes"}


class WarehouseDbtCliResource(DbtCliResource):
    """dagster-dbt's CLI resource without two costs paid before every invocation.

    - ``DbtCliResource`` asks the executable for its version with a ``dbt --version`` subprocess
      (1.8 s measured here: a second interpreter start, plus dbt's update check). The executable is
      the dbt of this interpreter's environment, so its version is the installed dbt-core's.
    - It opens a dbt adapter in this process (0.6 s) that is only used to fetch column metadata
      afterwards; without column lineage nothing reads it.

    Both rely on private members of dagster-dbt 0.29; ``tests/transform/test_dbt_project.py`` fails
    if they move, so an upgrade cannot silently bring the costs back.
    """

    @cached_property
    def _cli_version(self) -> version.Version:
        if Path(self.dbt_executable).resolve() not in (DBT_EXECUTABLE.resolve(), DBT_LAUNCHER.resolve()):
            return super()._cli_version
        from dbt.version import __version__ as installed

        return version.parse(installed)

    def _initialize_dbt_core_adapter(self, args):
        if column_lineage_enabled():
            return super()._initialize_dbt_core_adapter(args)
        return None


DBT_RESOURCE = WarehouseDbtCliResource(
    project_dir=str(DBT_PROJECT_DIR),
    profiles_dir=str(DBT_PROJECT_DIR),
    dbt_executable=next((str(p) for p in (DBT_LAUNCHER, DBT_EXECUTABLE) if p.exists()), "dbt"),
)


@dbt_assets(
    manifest=prepare_manifest(),
    dagster_dbt_translator=CsDbtTranslator(),
    name="cs_dbt_assets",
    pool=WORK_DB_POOL,
)
def cs_dbt_assets(context: AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    """dbt build: seeds, staging views, intermediate and mart tables, data and unit tests."""
    settings = warehouse.settings()
    # The dbt subprocess inherits the environment: its profile reads CSWH_WORK_DB and CSWH_PII_SALT.
    settings.apply_to_environ()
    use_private_umask()  # the dbt child writes the work file (and its WAL): 0600 from creation
    os.environ[PARENT_PID_VARIABLE] = str(os.getpid())
    replaced = replaced_partitions(settings.work_db)
    reasons = full_refresh_reasons(settings, replaced)
    if reasons:
        context.log.info("full refresh, incremental models are rebuilt whole: " + "; ".join(reasons))
    invocation = dbt.cli(build_command(bool(reasons)), context=context, target_path=dbt_target_dir(settings))
    events = invocation.stream()
    if column_lineage_enabled():
        # Built column schema + column lineage (sqlglot over the compiled SQL) per materialization.
        events = events.fetch_column_metadata(with_column_lineage=True)
    yield from events
    # Only a full selection rebuilds every incremental model whole.
    if len(context.selected_asset_keys) == len(context.assets_def.keys):
        if replaced:
            clear_replaced_partitions(settings.work_db, replaced)
        record_salt_fingerprint(settings)  # the marts are built with this salt now
