"""Dagster: the ingest assets on the warehouse's monthly partitions, a range of months in one run,
per-month materializations with their own counts, and the rule for an unreadable file.
(Planning, the sensor and the CLI are in tests/test_front_door.py.)"""

from __future__ import annotations

import dagster as dg
import duckdb

from dagster_project.definitions import build_definitions
from dagster_project.defs.conventions import RANGE_END_TAG, RANGE_START_TAG
from dagster_project.defs.ingest.assets import file_partitions
from dagster_project.lib.ingest.sources import CONTRACTS

RAW_KEYS = [dg.AssetKey(["raw", s]) for s in CONTRACTS]


def _materializations(result):
    return {(tuple(e.asset_key.path), e.partition): e.event_specific_data.materialization.metadata
            for e in result.get_asset_materialization_events()}


def test_asset_definitions(hand_landing):
    defs = build_definitions(hand_landing)
    months = None
    for key in RAW_KEYS:
        asset = defs.resolve_assets_def(key)
        spec = asset.specs_by_key[key]
        assert spec.group_name == f"ingest_{key.path[1]}"
        assert set(spec.kinds) == {"duckdb", "python"}
        assert spec.owners and spec.description
        assert asset.backfill_policy == dg.BackfillPolicy.single_run()
        assert asset.op.pool == "work_duckdb"
        months = months or asset.partitions_def
        assert asset.partitions_def == months  # one partitions definition for all six sources
    assert months.get_partition_keys() == ["2024-01-01"]  # the hand landing holds January 2024 only


def test_file_partitions_of_months():
    assert file_partitions(CONTRACTS["audits"], ["2024-02-01"]) == ["2024-02-01"]
    days = file_partitions(CONTRACTS["policies"], ["2024-02-01"])
    assert (days[0], days[-1], len(days)) == ("2024-02-01", "2024-02-29", 29)


def test_a_month_materializes_in_one_run_with_its_own_counts(hand_landing):
    defs = build_definitions(hand_landing)
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("warehouse_pipeline").execute_in_process(
            instance=instance, asset_selection=RAW_KEYS,
            tags={RANGE_START_TAG: "2024-01-01", RANGE_END_TAG: "2024-01-01"})
        assert result.success
        assert len(instance.get_runs()) == 1
        materialized = _materializations(result)
        assert set(materialized) == {(tuple(k.path), "2024-01-01") for k in RAW_KEYS}
        policies = materialized[("raw", "policies"), "2024-01-01"]
        assert policies["files"].value == 2 and policies["files_loaded"].value == 2
        assert policies["rows_loaded"].value == 6
        assert policies["dagster/row_count"].value == 6
        assert "| policy_no |" in policies["preview"].value
        assert "张三" not in policies["preview"].value  # PII stays out of the UI
        assert materialized[("raw", "audits"), "2024-01-01"]["dagster/row_count"].value == 3
    con = duckdb.connect(str(hand_landing.work_db), read_only=True)
    assert con.execute("SELECT count(DISTINCT _run_id) FROM raw.policies").fetchall() == [(1,)]
    assert con.execute("SELECT _run_id FROM raw.policies LIMIT 1").fetchall() == [(result.run_id,)]


def test_an_unreadable_file_is_recorded_and_the_step_loads_the_rest(hand_landing):
    """The step succeeds: the run is marked failed later, by the publish asset's complete_inputs
    check (tests/test_front_door.py), so the readable files still build and publish."""
    (hand_landing.landing_dir / "policies" / "2024-01-05.csv").write_bytes(b"")
    defs = build_definitions(hand_landing)
    result = defs.resolve_job_def("warehouse_pipeline").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        tags={RANGE_START_TAG: "2024-01-01", RANGE_END_TAG: "2024-01-01"},
        asset_selection=[dg.AssetKey(["raw", "policies"])], raise_on_error=False)
    assert result.success
    metadata = _materializations(result)[("raw", "policies"), "2024-01-01"]
    assert metadata["files_failed"].value == 1 and metadata["files"].value == 2
    con = duckdb.connect(str(hand_landing.work_db), read_only=True)
    [(status, message)] = con.execute("SELECT status, message FROM raw._ingest_ledger "
                                      "WHERE path = 'policies/2024-01-05.csv'").fetchall()
    assert status == "failed" and message.startswith("policies/2024-01-05.csv: empty file")
    assert con.execute("SELECT DISTINCT _partition FROM raw.policies").fetchall() == [("2024-01-06",)]
