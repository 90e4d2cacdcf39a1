"""The two schedules, in Asia/Shanghai time, visible and switchable in the Dagster UI.

- ``daily_pipeline_schedule`` — 02:00 every day: one run of the pipeline job planned like
  ``cs-warehouse run`` (``defs/planning.py``): ingest of the months with new, changed or gone landing
  files, then build, gate and publish; with nothing new it still builds, gates and publishes, so the
  marts stay within their freshness policy. Its run key is the day: a tick is never launched twice.
- ``monthly_snapshot_schedule`` — 08:00 on the 1st: the ``monthly_snapshot`` run for the previous
  month's partition (history rows -> publish -> report and e-mail). Its run key is the period; a month
  the partitions do not have (no data for it) is skipped with the reason.
"""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from dagster_project.defs.conventions import TIMEZONE
from dagster_project.defs.planning import launch_for, plan_pipeline
from dagster_project.settings import Settings

DAILY_CRON = "0 2 * * *"
MONTHLY_CRON = "0 8 1 * *"


def _local_date(moment: datetime) -> date:
    if moment.tzinfo is None:  # a naive time is taken as already local
        return moment.date()
    return moment.astimezone(ZoneInfo(TIMEZONE)).date()


def previous_month_partition_key(scheduled: datetime) -> str:
    """The monthly partition key ('YYYY-MM-01') of the month before the scheduled local date."""
    first = _local_date(scheduled).replace(day=1)
    return (first - timedelta(days=1)).replace(day=1).isoformat()


def build_schedules(pipeline_job, snapshot_job, partitions_def: dg.PartitionsDefinition,
                    pipeline_keys: frozenset[dg.AssetKey]) -> list[dg.ScheduleDefinition]:

    @dg.schedule(
        name="daily_pipeline_schedule",
        cron_schedule=DAILY_CRON,
        execution_timezone=TIMEZONE,
        job=pipeline_job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="02:00 Asia/Shanghai: ingest new landing files, build, gate and publish "
                    "(one pipeline run, planned like `cs-warehouse run`).",
    )
    def daily_pipeline_schedule(context: dg.ScheduleEvaluationContext, warehouse: dg.ResourceParam[Settings]):
        plan, _files, beyond = plan_pipeline(warehouse, partitions_def, rebuild_when_unchanged=True)
        if beyond:
            context.log.warning(beyond)
        return launch_for(plan, pipeline_keys).run_request(run_key=f"daily-{_local_date(context.scheduled_execution_time)}")

    @dg.schedule(
        name="monthly_snapshot_schedule",
        cron_schedule=MONTHLY_CRON,
        execution_timezone=TIMEZONE,
        job=snapshot_job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="08:00 Asia/Shanghai on the 1st: the KPI snapshot of the previous month "
                    "(history rows, publish, HTML report, e-mail to management).",
    )
    def monthly_snapshot_schedule(context: dg.ScheduleEvaluationContext):
        key = previous_month_partition_key(context.scheduled_execution_time)
        if not partitions_def.has_partition_key(key):
            return dg.SkipReason(f"no partition {key[:7]}: the landing data does not reach that month")
        return dg.RunRequest(run_key=f"snapshot-{key[:7]}", partition_key=key)

    return [daily_pipeline_schedule, monthly_snapshot_schedule]
