"""The Dagster instance every command records into (``cli/instance.py``, ``defs/storage.py``): its
event log is Dagster's own SQLite storage with its connections kept, readable by Dagster's stock
class; a run whose process was killed with -9 is marked failed with the reason at the next start
and frees its slot of the ``work_duckdb`` pool, so later runs are not blocked."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap

import dagster as dg
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from dagster_project.cli.instance import open_instance, prepare_dagster_home
from dagster_project.defs.storage import WarehouseSqliteEventLogStorage
from dagster_project.settings import REPO_ROOT
from tests.conftest import make_settings
from tests.reliability.harness import wait_for_line

JOB_MODULE = textwrap.dedent('''
    import os, sys, time
    import dagster as dg

    @dg.asset(pool="work_duckdb")
    def holder():
        print("holding the pool slot", file=sys.stderr, flush=True)
        time.sleep(float(os.environ.get("HOLD_SECONDS", "0")))
        return dg.MaterializeResult(metadata={"dagster/row_count": 1})

    job = dg.define_asset_job("hold", selection=[holder], executor_def=dg.in_process_executor)
    defs = dg.Definitions(assets=[holder], jobs=[job])
''')


def test_the_storage_overrides_members_that_still_exist(tmp_path):
    """It replaces private members of Dagster's SQLite event log; an upgrade that renames them
    must fail here, not bring the per-event cost back silently."""
    for name in ("_connect", "_initdb", "has_table", "conn_string_for_shard", "wipe", "dispose"):
        assert callable(getattr(SqliteEventLogStorage, name)), name
    storage = SqliteEventLogStorage.__new__(SqliteEventLogStorage)
    SqliteEventLogStorage.__init__(storage, str(tmp_path / "history"))
    assert hasattr(storage, "_db_lock") and isinstance(storage._initialized_dbs, set)
    assert issubclass(WarehouseSqliteEventLogStorage, SqliteEventLogStorage)


def test_runs_recorded_through_the_warehouse_storage_read_with_dagsters_stock_storage(tmp_path):
    settings = make_settings(tmp_path)
    instance = open_instance(settings)
    assert isinstance(instance.event_log_storage, WarehouseSqliteEventLogStorage)

    @dg.asset(partitions_def=dg.StaticPartitionsDefinition(["a", "b", "c"]))
    def letters(context):
        return dg.MaterializeResult(metadata={"dagster/row_count": 7})

    for key in ("a", "b", "c"):
        assert dg.materialize([letters], instance=instance, partition_key=key).success
    # Dagster's own class on the same files (what a plain `dagster dev` would use) sees it all.
    stock = SqliteEventLogStorage(str(settings.dagster_home / "history" / "runs"))
    records = stock.fetch_materializations(dg.AssetKey("letters"), limit=10).records
    assert sorted(r.partition_key for r in records) == ["a", "b", "c"]
    assert {r.asset_materialization.metadata["dagster/row_count"].value for r in records} == {7}


def test_a_killed_run_is_marked_failed_with_the_reason_and_frees_its_pool_slot(tmp_path):
    settings = make_settings(tmp_path)
    prepare_dagster_home(settings)
    module = tmp_path / "hold_job.py"
    module.write_text(JOB_MODULE, encoding="utf-8")
    code = textwrap.dedent(f'''
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        from hold_job import defs
        from dagster_project.cli.instance import open_instance, process_tags
        from tests.conftest import make_settings
        from pathlib import Path
        settings = make_settings(Path({str(tmp_path)!r}))
        defs.resolve_job_def("hold").execute_in_process(instance=open_instance(settings), tags=process_tags("test"))
    ''')
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO_ROOT, env={**settings.child_env(), "HOLD_SECONDS": "120"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for_line(proc, "holding the pool slot", timeout=120), "the run never started its step"
        instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
        assert instance.event_log_storage.get_concurrency_info("work_duckdb").active_slot_count == 1
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    [killed] = instance.get_runs()
    assert killed.status == dg.DagsterRunStatus.STARTED  # the instance still thinks it runs

    instance = open_instance(settings)  # the next start
    run = instance.get_run_by_id(killed.run_id)
    assert run.status == dg.DagsterRunStatus.FAILURE
    [failure] = [r.event_log_entry for r in instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records]
    assert "is gone" in failure.dagster_event.message and str(killed.tags["cswh/pid"]) in failure.dagster_event.message
    assert instance.event_log_storage.get_concurrency_info("work_duckdb").active_slot_count == 0
    # A later run of a step in the same pool is not blocked (it would wait for the slot forever).
    spec = importlib.util.spec_from_file_location("hold_job", module)
    hold_job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hold_job)
    assert hold_job.defs.resolve_job_def("hold").execute_in_process(instance=instance).success
