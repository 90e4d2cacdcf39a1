"""``cs-warehouse run``: plan, launch the pipeline job through Dagster, wait, print.

1. **Plan** (``defs/planning.py``, the same planner as the sensor and the daily schedule): the months
   with new, changed or gone landing files, for the sources that have them; with nothing new, a
   build-gate-publish run without ingest.
2. **Launch** the ``warehouse_pipeline`` job of the definitions built for these settings, recorded in
   the persistent instance under ``$DAGSTER_HOME`` (the Dagster UI of ``make dev`` shows it), in this
   process, and wait for it. The run's tags tie it to this process, so that a later start can tell
   it died (``cli/instance.py``).
3. **Print** the summary (``cli/summary.py``) and exit with the run's verdict (docs/operations.md):

   - 0: every step and check passed, a version was published, every landing file was loaded;
   - 3: a version was published, but the ``complete_inputs`` check says some landing file was not
     loaded (unreadable, held back, ignored, gone): the summary names each;
   - 1: a step or a blocking check failed and nothing new was published;
   - 2: usage or configuration (no landing files);
   - 4: another run is in progress on this warehouse.

The CLI decides nothing the definitions do not: which files load, what gates, what publishes and
when the run fails are the job's.
"""

from __future__ import annotations

import contextlib
import json
import time

from dagster_project.cli.instance import active_runs, open_instance, process_tags
from dagster_project.cli.outcome import EXIT_BUSY, EXIT_USAGE, exit_code, outcome_of
from dagster_project.cli.summary import print_run_summary
from dagster_project.definitions import build_definitions
from dagster_project.defs.conventions import PIPELINE_JOB
from dagster_project.defs.planning import launch_for, plan_pipeline
from dagster_project.lib.ingest.guard import RunLock
from dagster_project.lib.quality import gx_duckdb
from dagster_project.lib.transform import spark_engine
from dagster_project.lib.transform.dbt_project import salt_change_reason
from dagster_project.settings import Settings, eprint


def execute(job, launch, instance, log_path, *, launched_by: str = "cli"):
    """Run ``launch`` (a ``defs.planning.Launch``) of ``job`` in this process on ``instance``."""
    # The reason of a rebuild without new files already says what it does.
    scope = (f"; {launch.plan.start[:7]} .. {launch.plan.end[:7]} ({', '.join(launch.plan.sources)})"
             if launch.plan.ingests else "")
    eprint(f"[run] {job.name}: {launch.plan.reason}{scope}  (full log: {log_path})")
    started = time.monotonic()
    # dbt's own console output (hundreds of lines) goes to the run log; the terminal keeps the
    # compact step lines (stderr) and the summary.
    with open(log_path, "a", encoding="utf-8") as log, contextlib.redirect_stdout(log):
        result = job.execute_in_process(
            instance=instance,
            tags={**launch.tags, **process_tags(launched_by)},
            asset_selection=list(launch.asset_selection),
            raise_on_error=False,
            run_config={"loggers": {"compact": {}}},
        )
    return result, time.monotonic() - started


def run_pipeline(settings: Settings) -> int:
    # Known conditions before anything starts (docs/operations.md#exit-codes): another run on this
    # warehouse (exit 4), a PII salt that differs from the one the marts were built with (exit 2,
    # unless declared intended).
    lock = RunLock(settings.warehouse_dir, settings.work_db)
    try:
        salt_change_reason(settings)
        return _run_locked(settings)
    finally:
        lock.release()


def _run_locked(settings: Settings) -> int:
    settings.activate()
    if settings.engine == "spark":
        try:
            spark_engine.require_spark()
        except spark_engine.SparkEngineError as exc:
            eprint(f"error: {exc} (docs/spark.md#install)")
            return EXIT_USAGE
        eprint(f"[run] engine spark: ingest and the gates on DuckDB, dbt on Spark (lake {settings.lake_dir}, "
               f"catalog {settings.spark_dir}; docs/spark.md#one-switch)")
    eprint(f"[run] DuckDB memory budget {settings.memory_budget} per database "
           f"({'CSWH_DUCKDB_MEMORY_LIMIT' if settings.duckdb_memory_limit else 'sized from the landing files'})")
    instance = open_instance(settings)
    busy = active_runs(instance)
    if busy:
        eprint(f"error: run {busy[0].run_id[:8]} ({busy[0].job_name}) is in progress on this warehouse "
               f"(instance {settings.dagster_home}); wait for it or stop it, then run again")
        return EXIT_BUSY
    defs = build_definitions(settings)
    job = defs.resolve_job_def(PIPELINE_JOB)
    plan, files, beyond = plan_pipeline(settings, job.partitions_def, rebuild_when_unchanged=True)
    if not files:
        eprint(f"error: no landing files under {settings.landing_dir}")
        return EXIT_USAGE
    if beyond:
        eprint(f"[run] {beyond}")
    launch = launch_for(plan, frozenset(job.asset_layer.selected_asset_keys))
    # After planning (imports and hashing want the interpreter), before the ingest (DuckDB).
    gx_duckdb.warm_up_in_background()
    settings.run_logs_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.run_logs_dir / f"run-{time.strftime('%Y%m%dT%H%M%S')}.log"
    result, seconds = execute(job, launch, instance, log_path)
    outcome = outcome_of(result, instance, job.name, seconds)
    # A machine-readable record of the invocation next to its log (the benchmark reads it).
    log_path.with_suffix(".steps.json").write_text(json.dumps(
        {"runs": [{"job": outcome.job, "run_id": outcome.run_id, "success": outcome.success,
                   "seconds": outcome.seconds}], "steps": outcome.steps}, indent=1))
    print_run_summary(settings, outcome)
    return exit_code(outcome)
