"""The one partitions definition of the warehouse: months, shared by every ingest asset and the
monthly KPI snapshot.

A partition is a calendar month (Asia/Shanghai), keyed by its first day (``YYYY-MM-01``): a daily
landing file belongs to the month of its day, the monthly audit workbook to its month. One
definition for all six sources lets one run carry ingest -> dbt -> gates -> publish over any range
of months; months rather than days because every partition of a run is one materialization event
per asset in the Dagster instance: a two-year backlog is 24 x 6 events, not 730 x 6
(docs/operations.md#event-log-cost has the measurement).

The partitions follow the data (``partitions_end``): they end with the month of the last landed
file when the landing folder is historical, and run with the clock through the current month while
files keep arriving, so that the sensor and the daily schedule always find the month of a new file.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import dagster as dg

from dagster_project.defs.conventions import TIMEZONE

# A landing folder whose last file is at most this many days old still receives files ("live").
LIVE_LANDING_DAYS = 40


def _next_month(day: date) -> date:
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


def partitions_end(landing_days: list[str], today: date) -> date | None:
    """The exclusive end of the partitions (the first day after the last month), or None to follow
    the clock (through the current month). Pure, unit-tested.

    - no landing files, or a live landing (last file within ``LIVE_LANDING_DAYS`` of today): None;
    - a historical landing (e.g. the sample data of 2024-2025): the month after its last file.
    """
    if not landing_days:
        return None
    last = date.fromisoformat(max(landing_days))
    if (today - last).days <= LIVE_LANDING_DAYS:
        return None
    return _next_month(last)


def local_today() -> date:
    return datetime.now(ZoneInfo(TIMEZONE)).date()


def warehouse_partitions(start: str, landing_days: list[str], today: date | None = None) -> dg.MonthlyPartitionsDefinition:
    """Monthly partitions from ``start``'s month to ``partitions_end``."""
    first = date.fromisoformat(start).replace(day=1)
    end = partitions_end(landing_days, today or local_today())
    if end is not None and end <= first:
        end = _next_month(first)
    if end is None:
        # end_offset=1: the current (incomplete) month is a partition, files of today included.
        return dg.MonthlyPartitionsDefinition(start_date=first.isoformat(), timezone=TIMEZONE, end_offset=1)
    return dg.MonthlyPartitionsDefinition(start_date=first.isoformat(), end_date=end.isoformat(), timezone=TIMEZONE)
