"""The schedules: cron strings, timezone and the partitions they request, read from the objects."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg

from dagster_project.defs.report.schedules import (
    build_schedules,
    daily_pipeline_schedule,
    daily_run_request,
    monthly_snapshot_schedule,
    previous_month_partition_key,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_cron_strings_timezone_and_targets():
    assert daily_pipeline_schedule.cron_schedule == "0 2 * * *"
    assert monthly_snapshot_schedule.cron_schedule == "0 8 1 * *"
    for schedule in (daily_pipeline_schedule, monthly_snapshot_schedule):
        assert schedule.execution_timezone == "Asia/Shanghai"
        assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert daily_pipeline_schedule.job_name == "daily_pipeline"
    assert monthly_snapshot_schedule.job_name == "monthly_snapshot"


def test_factory_accepts_job_objects():
    daily_job = dg.define_asset_job("daily_pipeline", selection=dg.AssetSelection.all())
    snapshot_job = dg.define_asset_job("monthly_snapshot", selection=dg.AssetSelection.all())
    daily, monthly = build_schedules(daily_job, snapshot_job)
    assert (daily.name, daily.job_name, daily.cron_schedule) == ("daily_pipeline_schedule", "daily_pipeline", "0 2 * * *")
    assert (monthly.name, monthly.job_name) == ("monthly_snapshot_schedule", "monthly_snapshot")


def test_previous_month_in_shanghai_time():
    assert previous_month_partition_key(datetime(2024, 7, 1, 8, 0, tzinfo=SHANGHAI)) == "2024-06-01"
    assert previous_month_partition_key(datetime(2024, 1, 1, 8, 0, tzinfo=SHANGHAI)) == "2023-12-01"
    # 2024-07-01 08:00 in Shanghai is still June 30 in UTC: the local date decides
    utc = datetime(2024, 7, 1, 0, 0, tzinfo=ZoneInfo("UTC"))
    assert previous_month_partition_key(utc) == "2024-06-01"


def test_monthly_tick_requests_the_previous_month_once():
    from dagster_project.defs.report.assets import SNAPSHOT_PARTITIONS, kpi_snapshot

    job = dg.define_asset_job("monthly_snapshot", selection=[kpi_snapshot], partitions_def=SNAPSHOT_PARTITIONS)
    defs = dg.Definitions(assets=[kpi_snapshot], jobs=[job], schedules=[monthly_snapshot_schedule])
    context = dg.build_schedule_context(scheduled_execution_time=datetime(2024, 7, 1, 8, 0, tzinfo=SHANGHAI),
                                        repository_def=defs.get_repository_def())
    result = monthly_snapshot_schedule.evaluate_tick(context)
    assert len(result.run_requests) == 1
    request = result.run_requests[0]
    assert request.partition_key == "2024-06-01"
    assert request.run_key == "snapshot-2024-06"


def test_daily_request_covers_landing_days_before_today():
    scheduled = datetime(2024, 3, 5, 2, 0, tzinfo=SHANGHAI)
    request = daily_run_request(["2024-03-05", "2024-01-01", "2024-03-04", "2024-02-10"], scheduled)
    assert request.tags["dagster/asset_partition_range_start"] == "2024-01-01"
    assert request.tags["dagster/asset_partition_range_end"] == "2024-03-04"
    assert request.run_key == "daily-2024-03-05"
    assert isinstance(daily_run_request(["2024-03-05"], scheduled), dg.SkipReason)


def test_schedules_in_the_project_definitions():
    try:
        from dagster_project.definitions import defs
    except ImportError as exc:  # another part of the project is not written yet
        import pytest

        pytest.skip(f"dagster_project.definitions does not import yet: {exc}")
    daily = defs.get_schedule_def("daily_pipeline_schedule")
    monthly = defs.get_schedule_def("monthly_snapshot_schedule")
    assert (daily.cron_schedule, daily.execution_timezone, daily.job_name) == ("0 2 * * *", "Asia/Shanghai",
                                                                               "daily_pipeline")
    assert (monthly.cron_schedule, monthly.execution_timezone, monthly.job_name) == ("0 8 1 * *", "Asia/Shanghai",
                                                                                     "monthly_snapshot")
