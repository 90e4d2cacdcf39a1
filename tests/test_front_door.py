"""One front door: the CLI, the landing sensor and the daily schedule plan the same run with the same
pure function and run the same job, so the same landing files give the same warehouse.

- the planner (pure) and the partitions rule, on hand-made inputs;
- the sensor-vs-CLI equivalence: two copies of one warehouse get the same new files — a new day and a
  file edited in place with its size and mtime restored — one through `cs-warehouse run`, the other
  through the landing sensor's run request executed as the daemon executes it; the ledgers and the
  published marts are identical, and the sensor does not request the same files twice;
- the rule for an unreadable landing file: the readable files load and publish, the unreadable one is
  in the ledger with its reason, the run ends failed naming it, and the CLI exits 3.
"""

from __future__ import annotations

import os
import shutil
import sys
from datetime import date

import dagster as dg
import duckdb
import pytest

from dagster_project.defs.partitions import local_today, partitions_end, warehouse_partitions
from dagster_project.lib.planning import LandingFile, LoadedFile, period_of, plan_run
from dagster_project.settings import REPO_ROOT
from tests.conftest import new_settings, run_pipeline

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
from benchmarks.floor import compare_marts  # noqa: E402

SMALL = {"scale": 0.02, "start": date(2024, 1, 1), "days": 45, "seed": 5, "complaints_per_10k": 300}
MONTHS = ["2024-01-01", "2024-02-01", "2024-03-01"]


# ------------------------------------------------------------------------------------ the planner

def _file(source, partition, sha, folder=None):
    suffix = {"audits": ".xlsx"}.get(source, ".csv")
    return LandingFile(source, partition, f"{folder or source}/{partition[:7] if source == 'audits' else partition}{suffix}", sha)


def _loaded(f: LandingFile, sha=None, status="loaded"):
    return LoadedFile(f.source, f.partition, f.path, sha or f.sha256, status)


def test_nothing_new_plans_nothing_for_the_sensor_and_a_rebuild_for_the_cli():
    files = [_file("policies", "2024-01-05", "a"), _file("audits", "2024-01-01", "b")]
    loaded = {f.path: _loaded(f) for f in files}
    assert plan_run(files, loaded, known_periods=MONTHS, rebuild_when_unchanged=False) is None
    rebuild = plan_run(files, loaded, known_periods=MONTHS, rebuild_when_unchanged=True)
    assert not rebuild.ingests and rebuild.start is None and rebuild.run_key.startswith("rebuild:")


def test_changed_gone_and_new_files_give_one_range_of_months_and_a_key_naming_them():
    old = _file("policies", "2024-01-05", "a")
    resent = _file("claim_events", "2024-02-10", "new", folder="claims")
    new_day = _file("call_logs", "2024-03-01", "c", folder="calls")
    gone = _file("surveys", "2024-01-20", "s")
    loaded = {old.path: _loaded(old), resent.path: _loaded(resent, sha="old"), gone.path: _loaded(gone)}
    plan = plan_run([old, resent, new_day], loaded, known_periods=MONTHS, rebuild_when_unchanged=False)
    assert (plan.start, plan.end) == ("2024-01-01", "2024-03-01")
    assert plan.sources == ("claim_events", "call_logs", "surveys")  # the sources' own order
    assert {f.path for f in plan.changed} == {resent.path, new_day.path}
    assert [g.path for g in plan.gone] == [gone.path]
    again = plan_run([new_day, resent, old], dict(reversed(list(loaded.items()))), known_periods=MONTHS,
                     rebuild_when_unchanged=False)
    assert again.run_key == plan.run_key  # the same files in any order: the same run
    other = plan_run([old, _file("claim_events", "2024-02-10", "newer", folder="claims"), new_day], loaded,
                     known_periods=MONTHS, rebuild_when_unchanged=False)
    assert other.run_key != plan.run_key  # another content of one file: another run


def test_a_file_after_the_known_months_is_left_for_later_and_reported():
    later = _file("policies", "2024-05-02", "x")
    plan = plan_run([later], {}, known_periods=MONTHS, rebuild_when_unchanged=False)
    assert plan is None
    plan = plan_run([later, _file("policies", "2024-03-02", "y")], {}, known_periods=MONTHS, rebuild_when_unchanged=False)
    assert plan.end == "2024-03-01" and [f.path for f in plan.beyond] == [later.path]


def test_a_failed_file_is_not_planned_again_until_it_changes():
    bad = _file("policies", "2024-01-05", "bad")
    loaded = {bad.path: _loaded(bad, status="failed")}
    assert plan_run([bad], loaded, known_periods=MONTHS, rebuild_when_unchanged=False) is None


def test_partitions_end_with_a_historical_landing_and_follow_the_clock_for_a_live_one():
    assert partitions_end(["2024-01-01", "2025-12-30"], today=date(2026, 12, 1)) == date(2026, 1, 1)
    assert partitions_end(["2026-11-29"], today=date(2026, 12, 1)) is None
    assert partitions_end([], today=date(2026, 12, 1)) is None
    months = warehouse_partitions("2024-01-01", ["2024-01-03", "2025-12-30"], today=date(2026, 12, 1))
    keys = months.get_partition_keys()
    assert (keys[0], keys[-1], len(keys)) == ("2024-01-01", "2025-12-01", 24)
    live = warehouse_partitions("2024-01-01", ["2026-11-29"], today=date(2026, 12, 1))
    assert live.get_last_partition_key() == local_today().replace(day=1).isoformat()  # the current month
    assert period_of("2024-02-29") == "2024-02-01"


# ------------------------------------------------------------------------------------ equivalence

@pytest.fixture(scope="module")
def small_landing(tmp_path_factory):
    from dagster_project.tools.sample_data.generator import generate

    landing = tmp_path_factory.mktemp("front_door") / "landing"
    generate(landing, progress=False, **SMALL)
    return landing


def _hold_back_last_day(landing, target):
    """A copy of ``landing`` without the daily files of its last day; returns the held-back names."""
    last = max(p.name.split(".")[0] for p in landing.rglob("*-*-*.*"))
    shutil.copytree(landing, target)
    held = sorted(p.relative_to(target).as_posix() for p in target.rglob(f"{last}.*"))
    for rel in held:
        (target / rel).unlink()
    return held


def _edit_in_place_keeping_size_and_mtime(path) -> None:
    """Change one digit of the file, then restore its mtime: only the ctime tells."""
    stat = path.stat()
    data = bytearray(path.read_bytes())
    index = next(i for i in range(len(data) - 1, 0, -1) if chr(data[i]).isdigit() and data[i] != ord("7"))
    data[index] = ord("7")
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns


def _ledger(settings) -> list[tuple]:
    with duckdb.connect(str(settings.work_db), read_only=True) as con:
        return con.execute("SELECT source, partition, path, sha256, bytes, rows_landed, rows_loaded, "
                           "rows_quarantined, status, message FROM raw._ingest_ledger ORDER BY ALL").fetchall()


def _sensor_tick(settings):
    from dagster_project.definitions import build_definitions

    from dagster_project.cli.instance import open_instance

    defs = build_definitions(settings)
    instance = open_instance(settings)
    sensor = defs.resolve_sensor_def("landing_sensor")
    context = dg.build_sensor_context(instance=instance, definitions=defs, resources=defs.resources)
    return defs, instance, sensor.evaluate_tick(context)


def _run_like_the_daemon(defs, instance, request: dg.RunRequest):
    """Execute a sensor's run request the way the daemon's run launcher executes it: the job, the
    request's asset selection and tags, on the instance."""
    job = defs.resolve_job_def(request.job_name)
    return job.execute_in_process(instance=instance, tags=request.tags, asset_selection=request.asset_selection,
                                  raise_on_error=False)


@pytest.fixture(scope="module")
def two_warehouses(small_landing, tmp_path_factory):
    """Two warehouses that loaded the same landing files up to the day before the last one."""
    root = tmp_path_factory.mktemp("two")
    cli = new_settings(root / "cli", landing=root / "cli" / "landing")
    held = _hold_back_last_day(small_landing, cli.landing_dir)
    assert run_pipeline(cli) == 0
    sensor = new_settings(root / "sensor", landing=root / "sensor" / "landing")
    shutil.copytree(cli.landing_dir, sensor.landing_dir)
    shutil.copytree(cli.warehouse_dir, sensor.warehouse_dir, dirs_exist_ok=True)
    return cli, sensor, held


def test_a_sensor_run_and_a_cli_run_over_the_same_new_files_give_the_same_warehouse(two_warehouses, small_landing):
    cli, sensor, held = two_warehouses
    assert _ledger(cli) == _ledger(sensor)
    for settings in (cli, sensor):
        for rel in held:  # the last day arrives
            shutil.copyfile(small_landing / rel, settings.landing_dir / rel)
        _edit_in_place_keeping_size_and_mtime(settings.landing_dir / "policies" / "2024-01-10.csv")

    assert run_pipeline(cli) == 0
    defs, instance, result = _sensor_tick(sensor)
    [request] = result.run_requests
    assert request.job_name == "warehouse_pipeline"
    assert request.tags["dagster/asset_partition_range_start"] == "2024-01-01"
    assert request.tags["dagster/asset_partition_range_end"] == "2024-02-01"
    run = _run_like_the_daemon(defs, instance, request)
    assert run.success

    ledger = [row for row in _ledger(cli)]
    assert ledger == _ledger(sensor)
    edited = [row for row in ledger if row[2] == "policies/2024-01-10.csv"]
    assert edited and edited[0][8] == "loaded"  # the edit was seen and loaded by both paths
    differences = [c for c in compare_marts(cli.published_db, sensor.published_db) if not c.equal]
    assert differences == []

    # The same files again: no second request (its key is taken), and a fresh tick plans nothing.
    _, _, idle = _sensor_tick(sensor)
    assert not idle.run_requests and "no new, changed or gone" in str(idle.skip_message)


def test_an_unreadable_file_loads_the_rest_publishes_and_fails_the_run_naming_it(two_warehouses, tmp_path):
    cli, _, _ = two_warehouses
    settings = new_settings(tmp_path / "bad", landing=tmp_path / "bad" / "landing")
    shutil.copytree(cli.landing_dir, settings.landing_dir)
    shutil.copytree(cli.warehouse_dir, settings.warehouse_dir, dirs_exist_ok=True)
    bad = settings.landing_dir / "complaints" / "2024-02-03.json"
    bad.write_bytes(b'[{"complaint_no": "CP1", ')  # a transfer cut off mid-element
    good = settings.landing_dir / "policies" / "2024-02-04.csv"
    good.write_bytes(b"".join(good.read_bytes().splitlines(keepends=True)[:-1]))  # re-sent without its last row
    published_before = duckdb.connect(str(settings.published_db), read_only=True).execute(
        "SELECT run_id FROM meta.publish_manifest").fetchone()[0]

    assert run_pipeline(settings) == 3
    ledger = {row[2]: row for row in _ledger(settings)}
    assert ledger["complaints/2024-02-03.json"][8] == "failed"
    assert ledger["complaints/2024-02-03.json"][9].startswith("complaints/2024-02-03.json: ")
    assert ledger["policies/2024-02-04.csv"][8] == "loaded"  # the readable file of the run loaded
    with duckdb.connect(str(settings.published_db), read_only=True) as con:
        assert con.execute("SELECT run_id FROM meta.publish_manifest").fetchone()[0] != published_before
    instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
    [run] = instance.get_runs(limit=1)
    assert run.status == dg.DagsterRunStatus.FAILURE
    evaluations = [r.event_log_entry.dagster_event.event_specific_data for r in instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records]
    [complete] = [e for e in evaluations if e.check_name == "complete_inputs"]
    assert not complete.passed and "complaints/2024-02-03.json" in complete.description
