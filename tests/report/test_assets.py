"""The monthly snapshot as assets: history rows -> publish -> report, one monthly partition each."""

from __future__ import annotations

import dagster as dg
import duckdb

from dagster_project.defs.partitions import warehouse_partitions
from dagster_project.defs.report.assets import BRANCH_REPORTS_KEY, HISTORY_KEY, REPORT_KEY, build_report_assets

MONTHS = warehouse_partitions("2024-01-01", ["2024-06-30"])


def test_asset_definitions():
    history, report, branches = build_report_assets(MONTHS)
    assert (history.key, report.key, branches.key) == (HISTORY_KEY, REPORT_KEY, BRANCH_REPORTS_KEY)
    for asset in (history, report, branches):
        spec = asset.specs_by_key[asset.key]
        assert spec.group_name == "reporting" and spec.owners and spec.description
        assert asset.partitions_def == MONTHS
        assert asset.op.pool == "work_duckdb"
    for asset, key in ((report, REPORT_KEY), (branches, BRANCH_REPORTS_KEY)):
        assert dg.AssetKey(["published", "marts"]) in {dep.asset_key for dep in asset.specs_by_key[key].deps}
    assert MONTHS.get_first_partition_key() == "2024-01-01"


def test_history_and_report_of_a_partition(snap_settings):
    """The two snapshot assets on the test's published-like file (publish itself runs in the job,
    tests/report/test_snapshot_e2e.py); a month without data fails the history step with the reason."""
    from dagster_project.defs.resources import build_resources

    history, report, branches = build_report_assets(MONTHS)
    resources = build_resources(snap_settings.with_overrides(smtp={"CSWH_SMTP_TO_JL": "jl.manager@insurer.example"}))
    result = dg.materialize([history, report, branches], partition_key="2024-06-01", resources=resources,
                            instance=dg.DagsterInstance.ephemeral())
    assert result.success
    recorded = {e.asset_key: e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert recorded[HISTORY_KEY]["period"].value == "2024-06" and recorded[HISTORY_KEY]["revision"].value == 1
    assert recorded[REPORT_KEY]["email"].value.startswith("written to the outbox (1 file)")
    # three branch pages, one mailed (JL has a recipient), the others written only
    assert recorded[BRANCH_REPORTS_KEY]["pages"].value == 3
    assert recorded[BRANCH_REPORTS_KEY]["email"].value.startswith("JL: written to the outbox (1 file)")
    assert recorded[BRANCH_REPORTS_KEY]["not_mailed"].value == "<script>alert(1)</script>, SC"
    with duckdb.connect(str(snap_settings.work_db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM marts.kpi_snapshots WHERE period = '2024-06'").fetchone()[0] \
            == recorded[HISTORY_KEY]["dagster/row_count"].value
    failed = dg.materialize([history], partition_key="2024-02-01", resources=resources,
                            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert not failed.success
