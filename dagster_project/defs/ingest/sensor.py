"""The landing sensor: a run of the pipeline job as soon as landing files are new, changed or gone.

It asks the same planner as ``cs-warehouse run`` and the daily schedule (``defs/planning.py``), on
the same change cache, so a file edited in place is seen even when its mtime was restored. The run
key names the files the run was planned for: the same files are never requested twice, a re-sent
file (new content) gets a new run. While a run of the pipeline is queued or in progress, or the
work file is busy, it waits for the next tick (the run in progress holds the work file and the
ledger it would read).
"""

import dagster as dg
import duckdb

from dagster_project.defs.conventions import PIPELINE_JOB
from dagster_project.defs.planning import launch_for, plan_pipeline
from dagster_project.settings import Settings

IN_PROGRESS = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
               dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def build_landing_sensor(job, partitions_def: dg.PartitionsDefinition,
                         pipeline_keys: frozenset[dg.AssetKey]) -> dg.SensorDefinition:
    @dg.sensor(
        name="landing_sensor",
        job=job,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Watches the landing folder and launches the pipeline (ingest of the months with "
                    "new, changed or gone files -> dbt -> gates -> publish), planned like `cs-warehouse run`.",
    )
    def landing_sensor(context: dg.SensorEvaluationContext, warehouse: dg.ResourceParam[Settings]):
        busy = context.instance.get_runs(filters=dg.RunsFilter(job_name=PIPELINE_JOB, statuses=IN_PROGRESS), limit=1)
        if busy:
            return dg.SkipReason(f"run {busy[0].run_id[:8]} of {PIPELINE_JOB} is in progress; planning after it")
        try:
            plan, _files, beyond = plan_pipeline(warehouse, partitions_def, rebuild_when_unchanged=False)
        except duckdb.IOException as exc:  # the work file is held by a process outside Dagster
            return dg.SkipReason(f"the work file {warehouse.work_db} is busy ({str(exc).splitlines()[0][:120]})")
        if plan is None:
            return dg.SkipReason("no new, changed or gone landing file" + (f"; {beyond}" if beyond else ""))
        if beyond:
            context.log.warning(beyond)
        return launch_for(plan, pipeline_keys).run_request()

    return landing_sensor
