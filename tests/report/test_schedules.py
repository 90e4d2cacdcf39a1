"""The schedules: cron strings, timezone, targets, and the runs their ticks request."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from dagster_project.defs.report.schedules import previous_month_partition_key

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def defs(tiny_landing, tmp_path_factory):
    from dagster_project.definitions import build_definitions
    from tests.conftest import new_settings

    return build_definitions(new_settings(tmp_path_factory.mktemp("schedules"), landing=tiny_landing))


def test_cron_strings_timezone_and_targets(defs):
    daily = defs.resolve_schedule_def("daily_pipeline_schedule")
    monthly = defs.resolve_schedule_def("monthly_snapshot_schedule")
    assert (daily.cron_schedule, monthly.cron_schedule) == ("0 2 * * *", "0 8 1 * *")
    for schedule in (daily, monthly):
        assert schedule.execution_timezone == "Asia/Shanghai"
        assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert (daily.job_name, monthly.job_name) == ("warehouse_pipeline", "monthly_snapshot")


def test_previous_month_in_shanghai_time():
    assert previous_month_partition_key(datetime(2024, 7, 1, 8, 0, tzinfo=SHANGHAI)) == "2024-06-01"
    assert previous_month_partition_key(datetime(2024, 1, 1, 8, 0, tzinfo=SHANGHAI)) == "2023-12-01"
    # 2024-07-01 08:00 in Shanghai is still June 30 in UTC: the local date decides
    utc = datetime(2024, 7, 1, 0, 0, tzinfo=ZoneInfo("UTC"))
    assert previous_month_partition_key(utc) == "2024-06-01"


def _tick(defs, name, when):
    context = dg.build_schedule_context(scheduled_execution_time=when, repository_def=defs.get_repository_def(),
                                        instance=dg.DagsterInstance.ephemeral(), resources=defs.resources)
    return defs.resolve_schedule_def(name).evaluate_tick(context)


def test_monthly_tick_requests_the_previous_month_once_and_skips_a_month_without_data(defs):
    result = _tick(defs, "monthly_snapshot_schedule", datetime(2024, 7, 1, 8, 0, tzinfo=SHANGHAI))
    [request] = result.run_requests
    assert (request.partition_key, request.run_key) == ("2024-06-01", "snapshot-2024-06")
    # The tiny data set ends in July 2025: a tick in 2026 has no month of data to report.
    later = _tick(defs, "monthly_snapshot_schedule", datetime(2026, 3, 1, 8, 0, tzinfo=SHANGHAI))
    assert not later.run_requests and "2026-02" in later.skip_message


def test_daily_tick_plans_like_the_cli(defs):
    """On a warehouse that loaded nothing, the 02:00 tick requests the pipeline over every month
    with landing files, keyed by the day."""
    result = _tick(defs, "daily_pipeline_schedule", datetime(2025, 7, 5, 2, 0, tzinfo=SHANGHAI))
    [request] = result.run_requests
    assert request.run_key == "daily-2025-07-05"
    assert request.tags["dagster/asset_partition_range_start"] == "2024-01-01"
    assert request.tags["dagster/asset_partition_range_end"] == "2025-07-01"
    assert dg.AssetKey(["raw", "policies"]) in request.asset_selection
    assert dg.AssetKey(["published", "marts"]) in request.asset_selection
