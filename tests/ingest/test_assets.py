"""Dagster: the ingest assets, a partition range in one run, the sensor and run planning."""

from __future__ import annotations

import json

import dagster as dg
import duckdb
from ingest_helpers import policy_row, write_policies

from dagster_project.defs.ingest.assets import (
    DAILY_PARTITIONS, INGEST_ASSETS, MONTHLY_PARTITIONS, RANGE_END_TAG, RANGE_START_TAG, ingest_all,
    ingest_audits, ingest_run_requests, landing_sensor, partitions_with_files, plan_ingest_runs,
)
from dagster_project.defs.resources import WarehouseResource


def make_defs(settings):
    resources = {"warehouse": WarehouseResource(landing_dir=str(settings.landing_dir),
                                                warehouse_dir=str(settings.warehouse_dir))}
    return dg.Definitions(assets=INGEST_ASSETS, jobs=[ingest_all, ingest_audits], sensors=[landing_sensor],
                          resources=resources), resources


def test_asset_definitions():
    keys = {tuple(a.key.path) for a in INGEST_ASSETS}
    assert keys == {("raw", s) for s in ("policies", "claim_events", "call_logs", "surveys", "complaints", "audits")}
    for asset in INGEST_ASSETS:
        spec = next(iter(asset.specs))
        assert spec.group_name == f"ingest_{asset.key.path[1]}"
        assert set(spec.kinds) == {"duckdb", "python"}
        assert spec.owners and spec.description
        assert asset.backfill_policy == dg.BackfillPolicy.single_run()
        assert asset.op.pool == "work_duckdb"
        expected = MONTHLY_PARTITIONS if asset.key.path[1] == "audits" else DAILY_PARTITIONS
        assert asset.partitions_def == expected


def test_partition_range_materializes_in_one_run(hand_landing):
    defs, _ = make_defs(hand_landing)
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("ingest_all").execute_in_process(
            instance=instance, tags={RANGE_START_TAG: "2024-01-05", RANGE_END_TAG: "2024-01-06"})
        assert result.success
        runs = instance.get_runs()
        assert len(runs) == 1
        materialized = sorted((tuple(e.asset_key.path), e.partition) for e in
                              (ev.event_specific_data.materialization for ev in result.get_asset_materialization_events()))
        assert len(materialized) == 10  # five daily sources x two days
        policies = [ev.event_specific_data.materialization for ev in result.get_asset_materialization_events()
                    if ev.asset_key == dg.AssetKey(["raw", "policies"])][0]
        assert policies.metadata["rows_loaded"].value == 6
        assert policies.metadata["dagster/row_count"].value == 6
        assert "| policy_no |" in policies.metadata["preview"].value
        assert "张三" not in policies.metadata["preview"].value  # PII stays out of the UI
        assert instance.get_latest_materialization_event(dg.AssetKey(["raw", "surveys"])) is not None
    con = duckdb.connect(str(hand_landing.work_db), read_only=True)
    assert con.execute("SELECT count(DISTINCT _run_id) FROM raw.policies").fetchall() == [(1,)]
    assert con.execute("SELECT _run_id FROM raw.policies LIMIT 1").fetchall() == [(result.run_id,)]


def test_monthly_audits_job(hand_landing):
    defs, _ = make_defs(hand_landing)
    result = defs.resolve_job_def("ingest_audits").execute_in_process(partition_key="2024-01-01")
    assert result.success
    con = duckdb.connect(str(hand_landing.work_db), read_only=True)
    assert con.execute("SELECT count(*) FROM raw.audits").fetchall() == [(3,)]


def test_an_unreadable_file_holds_back_only_its_partition_and_the_step_says_so(hand_landing):
    (hand_landing.landing_dir / "policies" / "2024-01-05.csv").write_bytes(b"")
    defs, _ = make_defs(hand_landing)
    result = defs.resolve_job_def("ingest_all").execute_in_process(
        tags={RANGE_START_TAG: "2024-01-05", RANGE_END_TAG: "2024-01-06"},
        asset_selection=[dg.AssetKey(["raw", "policies"])], raise_on_error=False)
    assert result.success  # proportionate: the other day loads, the step reports the stale one
    # one materialization per partition of the range, each with the step's metadata
    metadata = [e for e in result.all_events if e.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION][0] \
        .event_specific_data.materialization.metadata
    assert metadata["files_failed"].value == 1
    [stale] = metadata["stale_partitions"].value
    assert stale["partition"] == "2024-01-05" and "policies/2024-01-05.csv: empty file" in stale["reason"]
    con = duckdb.connect(str(hand_landing.work_db), read_only=True)
    assert con.execute("SELECT DISTINCT _partition FROM raw.policies").fetchall() == [("2024-01-06",)]
    con.close()


def test_the_strict_setting_fails_the_step_on_an_unreadable_file(hand_landing):
    (hand_landing.landing_dir / "policies" / "2024-01-05.csv").write_bytes(b"")
    defs, _ = make_defs(hand_landing)
    result = defs.resolve_job_def("ingest_all").execute_in_process(
        tags={RANGE_START_TAG: "2024-01-05", RANGE_END_TAG: "2024-01-06"},
        asset_selection=[dg.AssetKey(["raw", "policies"])], raise_on_error=False,
        run_config={"ops": {"raw__policies": {"config": {"fail_on_unreadable_file": True}}}})
    assert not result.success
    failure = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE][0]
    assert "policies/2024-01-05.csv: empty file" in failure.message or \
        "policies/2024-01-05.csv: empty file" in str(failure.event_specific_data.error)


def test_sensor_requests_new_and_changed_files_once(hand_landing):
    defs, resources = make_defs(hand_landing)
    with dg.DagsterInstance.ephemeral() as instance:
        ctx = dg.build_sensor_context(instance=instance, resources=resources, definitions=defs)
        first = landing_sensor(ctx)
        assert sorted((r.job_name, r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG]) for r in first.run_requests) == [
            ("ingest_all", "2024-01-05", "2024-01-06"), ("ingest_audits", "2024-01-01", "2024-01-01")]
        # Same files: same run keys from a fresh cursor, nothing from the advanced cursor.
        again = landing_sensor(dg.build_sensor_context(instance=instance, resources=resources, definitions=defs))
        assert [r.run_key for r in again.run_requests] == [r.run_key for r in first.run_requests]
        idle = landing_sensor(dg.build_sensor_context(instance=instance, resources=resources, definitions=defs,
                                                      cursor=first.cursor))
        assert not idle.run_requests and idle.skip_reason
        # One re-sent day: one run for that day and that source only, with a new key.
        write_policies(hand_landing.landing_dir, "2024-01-06", [policy_row(9, "2024-01-06")])
        changed = landing_sensor(dg.build_sensor_context(instance=instance, resources=resources, definitions=defs,
                                                         cursor=first.cursor))
        [request] = changed.run_requests
        assert request.tags[RANGE_START_TAG] == request.tags[RANGE_END_TAG] == "2024-01-06"
        assert request.asset_selection == [dg.AssetKey(["raw", "policies"])]
        assert request.run_key not in {r.run_key for r in first.run_requests}
        assert json.loads(changed.cursor)["policies/2024-01-06.csv"][2] != json.loads(first.cursor)[
            "policies/2024-01-06.csv"][2]


def test_plan_ingest_runs_is_deterministic_and_per_job():
    entries = [("surveys", "2024-01-03", "c" * 64), ("policies", "2024-01-01", "a" * 64),
               ("audits", "2024-02-01", "d" * 64), ("policies", "2024-01-09", "b" * 64)]
    plans = plan_ingest_runs(entries)
    assert [(p.job_name, p.start, p.end, p.sources) for p in plans] == [
        ("ingest_all", "2024-01-01", "2024-01-09", ("policies", "surveys")),
        ("ingest_audits", "2024-02-01", "2024-02-01", ("audits",))]
    assert plans == plan_ingest_runs(list(reversed(entries)))
    other = plan_ingest_runs([*entries[:3], ("policies", "2024-01-09", "e" * 64)])
    assert other[0].run_key != plans[0].run_key and other[1].run_key == plans[1].run_key
    # partitions the definition does not know yet (e.g. a file dated today) are left for later
    assert plan_ingest_runs(entries, {"ingest_all": {"2024-01-01"}, "ingest_audits": set()})[0].end == "2024-01-01"


def test_partitions_with_files_ignores_misnamed_files(hand_landing):
    (hand_landing.landing_dir / "policies" / "2024-01-07.csv.bak").write_text("x")
    (hand_landing.landing_dir / "policies" / "notes.csv").write_text("x")
    assert partitions_with_files(hand_landing.landing_dir, "policies") == ["2024-01-05", "2024-01-06"]
    assert partitions_with_files(hand_landing.landing_dir, "audits") == ["2024-01-01"]
    requests = ingest_run_requests(hand_landing.landing_dir)
    assert [r.job_name for r in requests] == ["ingest_all", "ingest_audits"]
