"""The generator's working-hour clock (it places call-backs before or after a case's deadline) agrees
with the chinese-calendar package, walked hour by hour: 09:00-18:00 on working days, make-up working
days included, public holidays not."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np

from dagster_project.tools.sample_data.workhours import WorkingHourClock

ORIGIN = date(2024, 1, 1)


def _seconds(moment: datetime) -> int:
    return int((moment - datetime(ORIGIN.year, ORIGIN.month, ORIGIN.day)).total_seconds())


def _walk(start: datetime, hours: int) -> datetime:
    """Add whole working hours one quarter-hour at a time (a slow, obvious reference)."""
    import chinese_calendar

    moment, left = start, hours * 4
    while left:
        inside = chinese_calendar.is_workday(moment.date()) and 9 <= moment.hour < 18
        moment += timedelta(minutes=15)
        left -= inside
    return moment


def test_deadlines_across_holidays_and_make_up_days_match_the_package():
    clock = WorkingHourClock(ORIGIN, -10, 800, 9, 18)
    rng = np.random.default_rng(5)
    starts = [datetime(2024, 9, 13, 16), datetime(2024, 9, 29, 8), datetime(2025, 1, 27, 17, 45),
              datetime(2025, 5, 30, 12, 15), datetime(2024, 10, 1, 10)]
    starts += [datetime(2024, 1, 1) + timedelta(minutes=15 * int(m)) for m in rng.integers(0, 4 * 24 * 540, 40)]
    for start in starts:
        for hours in (9, 24, 48):
            got = datetime(ORIGIN.year, ORIGIN.month, ORIGIN.day) + timedelta(
                seconds=int(clock.add(np.array([_seconds(start)]), hours)[0]))
            assert got == _walk(start, hours), (start, hours)
    # Friday 13 September 2024, 16:00 + 24 working hours: Saturday 14 is a make-up working day,
    # 15-17 are the Mid-Autumn holidays -> Thursday 19, 13:00
    due = clock.add(np.array([_seconds(datetime(2024, 9, 13, 16))]), 24)[0]
    assert datetime(2024, 1, 1) + timedelta(seconds=int(due)) == datetime(2024, 9, 19, 13)
