"""The dbt project as Dagster assets: one asset per seed and model, dbt tests as asset checks.

``CsDbtTranslator`` places the dbt graph under the ingest assets: each dbt source ``raw.<table>``
gets the asset key ``["raw", <table>]``, the key of the ingest asset that loads it, so staging
models depend on the ingest assets in one graph. Models and seeds are keyed by layer
(``["staging", m]``, ``["intermediate", m]``, ``["marts", m]``, ``["reference", seed]``) and grouped
by layer. ``dbt build`` runs models and their tests in DAG order; tests of severity ``error``
become blocking asset checks, so a failing test stops everything downstream in the same run
(publish included). The project has no dbt tests on its sources: a raw row's contract is checked at
ingest (and by the raw Great Expectations suites, which gate dbt within the run).

Column schemas (names, types, descriptions) come from the manifest as definition metadata. With
``CSWH_DBT_COLUMN_LINEAGE=1`` each materialization also carries the built table's column schema and
column lineage (``fetch_column_metadata``), so the UI shows which upstream columns feed each mart
column; it is off by default because it roughly doubles the dbt step on the tiny data set
(about 49 s -> 89 s measured), mostly sqlglot parsing per model.
"""

import time
from typing import Any, Iterator, Mapping, Optional

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, dbt_assets

from dagster_project.defs.conventions import OWNERS, WORK_DB_POOL
from dagster_project.defs.transform.resource import WarehouseDbtCliResource
from dagster_project.lib.ingest.guard import use_private_umask
from dagster_project.lib.transform.catalog import load_manifest
from dagster_project.lib.transform import spark_engine
from dagster_project.lib.transform.dbt_project import (
    build_command, clear_replaced_partitions, dbt_target_dir, excluding, full_refresh_reasons, load_run_results,
    prepare_manifest, record_salt_fingerprint, record_verified_seeds, replaced_partitions, seed_partial_parse,
    unchanged_seed_exclusions,
)
from dagster_project.settings import Settings, connect_work_db

# Model folder (first path part under models/) -> layer name used for keys and groups.
LAYERS = ("staging", "intermediate", "marts")
# A progress line at most this often (each one is an event in the instance).
PROGRESS_SECONDS = 10.0


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


def table_row_counts(settings: Settings, keys: list[dg.AssetKey]) -> dict[dg.AssetKey, int]:
    """Rows of every table among ``keys`` (schema = the key's layer); views are not counted (they
    hold no rows of their own, and counting one is a scan of what it reads)."""
    con = connect_work_db(settings.work_db, read_only=True)
    try:
        tables = {(schema, name) for schema, name in con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'").fetchall()}
        return {key: int(con.execute(f'SELECT count(*) FROM "{key.path[0]}"."{key.path[1]}"').fetchone()[0])
                for key in keys if len(key.path) == 2 and tuple(key.path) in tables}
    finally:
        con.close()


def with_row_counts(events: Iterator, settings: Settings, key_of_output, after_build=None) -> Iterator:
    """dbt's events once dbt has exited, each model and seed output with ``dagster/row_count``:
    while dbt runs, its process holds the work file, so the counts are read after the last event
    (one read-only connection); the materializations are then recorded together at the end of the
    step. ``after_build`` runs first when dbt succeeded (on Spark: the built tables are read into the
    work file). When dbt exits with a failure, what it reported (its failed tests as failed checks
    above all) is still yielded, then the failure is raised."""
    buffered, failure = [], None
    try:
        for event in events:
            buffered.append(event)
    except Exception as exc:  # dbt exited non-zero: its results up to here are still the record
        failure = exc
    if failure is None and after_build is not None:
        after_build()
    outputs = [e for e in buffered if isinstance(e, dg.Output)]
    counts = table_row_counts(settings, [key_of_output(o.output_name) for o in outputs]) if outputs else {}
    for event in buffered:
        if isinstance(event, dg.Output) and key_of_output(event.output_name) in counts:
            event = event.with_metadata({**event.metadata, "dagster/row_count": counts[key_of_output(event.output_name)]})
        yield event
    if failure is not None:
        raise failure


def with_progress(events: Iterator, total: int, log, clock=time.monotonic) -> Iterator:
    """Pass dbt's Dagster events through, logging ``dbt: <done>/<total> nodes`` as nodes finish
    (a model or seed is an output, a test a check result)."""
    done, last = 0, clock()
    for event in events:
        if isinstance(event, (dg.Output, dg.AssetMaterialization, dg.AssetCheckResult, dg.AssetObservation)):
            done += 1
            now = clock()
            if now - last >= PROGRESS_SECONDS and done < total:
                log.info(f"dbt: {done}/{total} nodes done")
                last = now
        yield event
    log.info(f"dbt: {done}/{total} nodes done")


@dbt_assets(
    manifest=prepare_manifest(),
    dagster_dbt_translator=CsDbtTranslator(),
    name="cs_dbt_assets",
    pool=WORK_DB_POOL,
)
def cs_dbt_assets(context: dg.AssetExecutionContext, dbt: WarehouseDbtCliResource,
                  warehouse: dg.ResourceParam[Settings]):
    """dbt build: seeds, staging views, intermediate and mart tables, data tests."""
    use_private_umask()  # the dbt child writes the work file (and its WAL): 0600 from creation
    on_spark = warehouse.engine == "spark"
    if on_spark:
        spark_engine.require_spark()
    replaced = replaced_partitions(warehouse.work_db)
    reasons = full_refresh_reasons(warehouse, replaced)
    if reasons:
        context.log.info("full refresh, incremental models are rebuilt whole: " + "; ".join(reasons))
    seed_partial_parse(warehouse, dbt_target_dir(warehouse))
    manifest = load_manifest(prepare_manifest())
    whole_selection = len(context.selected_asset_keys) == len(context.assets_def.keys)
    # Unchanged, verified seeds are left out of an incremental build of the whole project (a
    # subset's tests come through dbt's indirect selection, which leaving them out turns off).
    # (On Spark every build loads its seeds: the verified record is of the work file's tables.)
    left_out = [] if reasons or not whole_selection or on_spark else unchanged_seed_exclusions(warehouse, manifest)
    if left_out:
        context.log.info(f"seeds unchanged since their verified build: {len(left_out)} seed and test nodes left out")
    after_build = None
    if on_spark:
        mirrored = spark_engine.mirror_sources_to_lake(warehouse, manifest)
        context.log.info(
            f"spark: {len(mirrored)} raw tables ({sum(m['rows'] for m in mirrored.values()):,} rows) in the lake "
            f"{warehouse.lake_dir}: {sum(m['written'] for m in mirrored.values())} month files written, "
            f"{sum(m['removed'] for m in mirrored.values())} removed, {sum(m['kept'] for m in mirrored.values())} "
            "unchanged; dbt builds on Spark")

        def after_build() -> None:
            loaded = spark_engine.load_spark_tables(warehouse, manifest)
            context.log.info(f"spark: the {len(loaded)} tables Spark built read into the work file")
            views = spark_engine.build_duckdb_views(warehouse)
            context.log.info(f"spark: the staging views rebuilt on DuckDB for the gates' reconciliations ({views['elapsed_seconds']:.1f} s)")
    invocation = dbt.build(warehouse, excluding(build_command(bool(reasons)), left_out), context=context,
                           target_path=dbt_target_dir(warehouse))
    events = invocation.stream()
    if warehouse.dbt_column_lineage:
        # Built column schema + column lineage (sqlglot over the compiled SQL) per materialization.
        events = events.fetch_column_metadata(with_column_lineage=True)
    total = len(context.selected_asset_keys) + len(context.selected_asset_check_keys) - len(left_out)
    yield from with_row_counts(with_progress(iter(events), total, context.log), warehouse,
                               context.assets_def.keys_by_output_name.get, after_build)
    # The checks of the left-out tests hold as verified: their seed is the one they passed on.
    for key in sorted(context.selected_asset_check_keys, key=str):
        if key.name in left_out:
            yield dg.AssetCheckResult(asset_key=key.asset_key, check_name=key.name, passed=True, metadata={
                "not_rerun": "the seed and this test are as in the build where it passed (raw._dbt_verified_seeds)"})
    record_verified_seeds(warehouse, manifest, load_run_results(warehouse))
    # Only a full selection rebuilds every incremental model whole.
    if whole_selection:
        if replaced:
            clear_replaced_partitions(warehouse.work_db, replaced)
        record_salt_fingerprint(warehouse)  # the marts are built with this salt now
