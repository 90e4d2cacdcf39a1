"""The kpi_snapshot asset materializes one monthly partition through Dagster."""

from __future__ import annotations

import dagster as dg
import duckdb

from dagster_project.defs.report.assets import SNAPSHOT_PARTITIONS, kpi_snapshot


def test_asset_definition():
    assert kpi_snapshot.key == dg.AssetKey("kpi_snapshot")
    spec = kpi_snapshot.specs_by_key[kpi_snapshot.key]
    assert spec.group_name == "reporting" and set(spec.kinds) == {"python", "duckdb"}
    assert dg.AssetKey(["published", "marts"]) in {dep.asset_key for dep in spec.deps}
    assert kpi_snapshot.partitions_def == SNAPSHOT_PARTITIONS
    assert SNAPSHOT_PARTITIONS.get_first_partition_key() == "2024-01-01"


def test_same_partitions_as_the_monthly_ingest():
    import pytest

    try:
        from dagster_project.defs.ingest.assets import MONTHLY_PARTITIONS
    except ImportError as exc:
        pytest.skip(f"ingest assets not importable yet: {exc}")
    assert MONTHLY_PARTITIONS == SNAPSHOT_PARTITIONS


def test_materialize_a_partition(snap_settings, monkeypatch):
    for key, value in snap_settings.export_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("CSWH_SMTP_HOST", raising=False)
    result = dg.materialize([kpi_snapshot], partition_key="2024-06-01", instance=dg.DagsterInstance.ephemeral())
    assert result.success
    [event] = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["period"].value == "2024-06" and metadata["revision"].value == 1
    assert metadata["email"].value.startswith("delivered")
    with duckdb.connect(str(snap_settings.published_db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM marts.kpi_snapshots WHERE period = '2024-06'").fetchone()[0] \
            == metadata["dagster/row_count"].value
    # a partition without data fails the step with the reason
    failed = dg.materialize([kpi_snapshot], partition_key="2024-02-01", instance=dg.DagsterInstance.ephemeral(),
                            raise_on_error=False)
    assert not failed.success
