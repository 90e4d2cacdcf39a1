"""The analyses that run in Python on the dbt build (``lib/analysis/``: the key-driver regressions
and the emerging terms of the survey comments), one asset each. Each reads an intermediate model of
the work file and writes a mart the publish step copies, so each is in the ``work_duckdb`` pool and
upstream of ``published/marts``. Methods: docs/definitions.md#key-drivers,
docs/definitions.md#emerging-terms.
"""

import dagster as dg

from dagster_project.defs.conventions import OWNERS, WORK_DB_POOL
from dagster_project.lib.analysis import ANALYSES
from dagster_project.lib.analysis.tables import Analysis
from dagster_project.settings import Settings


def build_analysis_asset(analysis: Analysis) -> dg.AssetsDefinition:
    schema, model = analysis.input_model.split(".")

    @dg.asset(
        name=analysis.table,
        key_prefix="marts",
        group_name="marts",
        kinds={"python", "duckdb"},
        owners=OWNERS,
        deps=[dg.AssetKey([schema, model])],
        pool=WORK_DB_POOL,
        description=analysis.description,
    )
    def _analysis(warehouse: dg.ResourceParam[Settings]) -> dg.MaterializeResult:
        counts = analysis.run(warehouse.work_db, warehouse.memory_budget, warehouse.warehouse_dir)
        return dg.MaterializeResult(metadata={"dagster/row_count": counts["rows"],
                                              **{k: v for k, v in counts.items() if k != "rows"}})

    return _analysis


ANALYSIS_ASSETS = [build_analysis_asset(analysis) for analysis in ANALYSES]
