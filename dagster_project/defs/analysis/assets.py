"""The analyses that run in Python on the dbt build: the key-driver regressions and the emerging
terms of the survey comments (``lib/analysis/``). Each reads an intermediate model of the work file
and writes a mart the publish step copies, so both are in the ``work_duckdb`` pool and upstream of
``published/marts``. Methods: docs/definitions.md#key-drivers, docs/definitions.md#emerging-terms.
"""

import dagster as dg

from dagster_project.defs.conventions import OWNERS, WORK_DB_POOL
from dagster_project.lib.analysis import emerging_terms, key_drivers
from dagster_project.settings import Settings

KEY_DRIVERS_KEY = dg.AssetKey(["marts", key_drivers.OUTPUT_TABLE])
EMERGING_TERMS_KEY = dg.AssetKey(["marts", emerging_terms.OUTPUT_TABLE])


@dg.asset(
    key=KEY_DRIVERS_KEY,
    group_name="marts",
    kinds={"python", "duckdb"},
    owners=OWNERS,
    deps=[dg.AssetKey(["intermediate", "int_key_driver_observations"])],
    pool=WORK_DB_POOL,
    description=key_drivers.DESCRIPTION,
)
def mart_key_drivers(warehouse: dg.ResourceParam[Settings]) -> dg.MaterializeResult:
    counts = key_drivers.run(warehouse.work_db, warehouse.memory_budget)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": counts["rows"], "models": counts["models"],
        "significant_drivers": counts["significant_drivers"]})


@dg.asset(
    key=EMERGING_TERMS_KEY,
    group_name="marts",
    kinds={"python", "duckdb"},
    owners=OWNERS,
    deps=[dg.AssetKey(["intermediate", "int_survey_comments"])],
    pool=WORK_DB_POOL,
    description=emerging_terms.DESCRIPTION,
)
def mart_emerging_terms(warehouse: dg.ResourceParam[Settings]) -> dg.MaterializeResult:
    counts = emerging_terms.run(warehouse.work_db, warehouse.memory_budget, warehouse.warehouse_dir)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": counts["rows"], "emerging_terms": counts["emerging"], "comments": counts["comments"]})


ANALYSIS_ASSETS = [mart_key_drivers, mart_emerging_terms]
