"""The working-hour clock of the follow-up deadlines, for the generator.

The warehouse counts a deadline in working hours on the business calendar seed
(``dbt/seeds/business_calendar.csv``: China's working days, make-up working days included) over the
working day ``BUSINESS_HOURS`` (docs/definitions.md#followup-clocks). The generator needs the same
clock to place a call-back before or after a case's deadline, so it reads the same committed seed
(the chinese-calendar package it was written from is a development tool only). A day outside the
seed's years counts as a working day from Monday to Friday.

Positions are hours of working time since the clock's first day; a moment outside the working day
sits at the position of the day's opening (before it) or closing (after it).
"""

from __future__ import annotations

import csv
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np

from dagster_project.settings import DBT_PROJECT_DIR

SECONDS_PER_DAY = 86_400
CALENDAR_SEED = DBT_PROJECT_DIR / "seeds" / "business_calendar.csv"


@lru_cache(maxsize=4)
def working_days(path: Path = CALENDAR_SEED) -> dict[date, bool]:
    with open(path, encoding="utf-8", newline="") as fh:
        return {date.fromisoformat(r["calendar_date"]): r["is_working_day"] == "true" for r in csv.DictReader(fh)}


class WorkingHourClock:
    """Working-hour arithmetic on generator seconds (int64 seconds since ``origin``'s midnight)."""

    def __init__(self, origin: date, first_day: int, last_day: int, open_hour: float, close_hour: float):
        known = working_days()
        self.lo = first_day
        self.open_h, self.hours = float(open_hour), float(close_hour - open_hour)
        days = [origin + timedelta(days=i) for i in range(first_day, last_day + 1)]
        self.is_working = np.array([known.get(d, d.weekday() < 5) for d in days], dtype=bool)
        # working days strictly before each day, and the day index of the k-th working day (k from 0)
        self.before = np.concatenate([[0], np.cumsum(self.is_working)[:-1]]).astype(np.int64)
        self.working_index = np.flatnonzero(self.is_working)

    def position(self, seconds: np.ndarray) -> np.ndarray:
        seconds = np.asarray(seconds, dtype=np.int64)
        idx = np.clip(seconds // SECONDS_PER_DAY - self.lo, 0, len(self.is_working) - 1)
        into = (seconds - (idx + self.lo) * SECONDS_PER_DAY) / 3600.0
        within = np.where(self.is_working[idx], np.clip(into - self.open_h, 0.0, self.hours), 0.0)
        return self.before[idx] * self.hours + within

    def add(self, seconds: np.ndarray, hours: float | np.ndarray) -> np.ndarray:
        """The moment `hours` working hours after each of `seconds`."""
        target = self.position(seconds) + np.asarray(hours, dtype=np.float64)
        k = np.maximum(np.ceil(target / self.hours).astype(np.int64), 1)  # the k-th working day (1-based)
        k = np.minimum(k, len(self.working_index))
        day = self.working_index[k - 1] + self.lo
        offset = target - (k - 1) * self.hours
        return (day * SECONDS_PER_DAY + np.round((self.open_h + offset) * 3600)).astype(np.int64)
