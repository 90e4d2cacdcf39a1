"""The two schedules (DESIGN §8), in Asia/Shanghai time, visible and switchable in the Dagster UI.

- ``daily_pipeline_schedule`` — 02:00 every day: one ``daily_pipeline`` run (ingest → dbt → gates →
  publish) over the days that have landing files up to yesterday. Ingest is idempotent (the file
  ledger skips files already loaded), so covering the whole range costs little and picks up late
  files too; the landing sensor reacts to new files in between.
- ``monthly_snapshot_schedule`` — 08:00 on the 1st: the ``monthly_snapshot`` run for the previous
  month's partition. Its run key is the period, so a tick is never launched twice; re-running a
  period by hand is harmless anyway (no new revision, no second e-mail).

Both are created by ``build_schedules(daily_job, snapshot_job)``; passing ``None`` targets the jobs by
name (``daily_pipeline``, ``monthly_snapshot``), which is what the module-level objects do.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Iterable
from zoneinfo import ZoneInfo

import dagster as dg

from dagster_project.defs.conventions import RANGE_END_TAG, RANGE_START_TAG

SCHEDULE_TIMEZONE = "Asia/Shanghai"
DAILY_CRON = "0 2 * * *"
MONTHLY_CRON = "0 8 1 * *"
DAILY_JOB_NAME = "daily_pipeline"
SNAPSHOT_JOB_NAME = "monthly_snapshot"


def _local_date(moment: datetime) -> date:
    if moment.tzinfo is None:  # a naive time is taken as already local
        return moment.date()
    return moment.astimezone(ZoneInfo(SCHEDULE_TIMEZONE)).date()


def previous_month_partition_key(scheduled: datetime) -> str:
    """The monthly partition key ('YYYY-MM-01') of the month before the scheduled local date."""
    first = _local_date(scheduled).replace(day=1)
    return (first - timedelta(days=1)).replace(day=1).isoformat()


def daily_run_request(day_keys: Iterable[str], scheduled: datetime) -> dg.RunRequest | dg.SkipReason:
    """One run over the partition range of days with landing files before the scheduled local date
    (today's partition is not complete yet, so it does not exist in Dagster)."""
    today = _local_date(scheduled).isoformat()
    keys = sorted(k for k in set(day_keys) if k < today)
    if not keys:
        return dg.SkipReason(f"no landing files for days before {today}")
    return dg.RunRequest(run_key=f"daily-{today}",
                         tags={RANGE_START_TAG: keys[0], RANGE_END_TAG: keys[-1]})


def _landing_day_keys() -> list[str]:
    # Imported when the tick runs, so that loading the definitions never depends on the landing folder.
    from dagster_project.settings import Settings
    from dagster_project.lib.ingest import CONTRACTS
    from dagster_project.defs.ingest.assets import partitions_with_files

    settings = Settings.from_env()
    return [key for contract in CONTRACTS.values() if contract.partitioning == "daily"
            for key in partitions_with_files(settings.landing_dir, contract.source)]


def _daily_tick(context: dg.ScheduleEvaluationContext):
    return daily_run_request(_landing_day_keys(), context.scheduled_execution_time)


def _monthly_tick(context: dg.ScheduleEvaluationContext):
    key = previous_month_partition_key(context.scheduled_execution_time)
    return dg.RunRequest(run_key=f"snapshot-{key[:7]}", partition_key=key)


def build_schedules(daily_job=None, snapshot_job=None) -> list[dg.ScheduleDefinition]:
    """The daily pipeline and monthly snapshot schedules, targeting the given job objects (or the
    jobs of the same names when None)."""

    def target(job, name: str) -> dict:
        return {"job": job} if job is not None else {"job_name": name}

    daily = dg.ScheduleDefinition(
        name="daily_pipeline_schedule",
        cron_schedule=DAILY_CRON,
        execution_timezone=SCHEDULE_TIMEZONE,
        execution_fn=_daily_tick,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="02:00 Asia/Shanghai: ingest new landing files, build, gate and publish "
                    "(one daily_pipeline run over the days with landing files).",
        **target(daily_job, DAILY_JOB_NAME),
    )
    monthly = dg.ScheduleDefinition(
        name="monthly_snapshot_schedule",
        cron_schedule=MONTHLY_CRON,
        execution_timezone=SCHEDULE_TIMEZONE,
        execution_fn=_monthly_tick,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="08:00 Asia/Shanghai on the 1st: the KPI snapshot of the previous month "
                    "(history rows, HTML report, e-mail to management).",
        **target(snapshot_job, SNAPSHOT_JOB_NAME),
    )
    return [daily, monthly]


daily_pipeline_schedule, monthly_snapshot_schedule = build_schedules()
