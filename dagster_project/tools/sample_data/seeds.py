"""The dbt seeds under ``dbt/seeds/`` are written from ``dagster_project.lib.reference`` (one source of
truth for branches, stages, lines of business and business sources) and, for the business calendar,
from the ``chinese-calendar`` package (China's public holidays and make-up working days as the State
Council publishes them); a test checks that the committed files equal what this module produces."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from pathlib import Path

from dagster_project.lib.reference import BRANCHES, BUSINESS_SOURCES, LINES_OF_BUSINESS, STAGES


def seed_tables() -> dict[str, tuple[list[str], list[list]]]:
    """file name -> (header, rows). Column names follow dbt/seeds/_seeds.yml (code, label_zh ...)."""
    return {
        "branches.csv": (
            ["code", "name_zh", "name_en", "province_zh", "urban_share", "surveyor_sla_minutes",
             "size_weight"],
            [[b.code, b.name_zh, b.name_en, b.province_zh, f"{b.urban_share:.2f}", b.surveyor_sla_minutes,
              f"{b.size_weight:.2f}"] for b in BRANCHES],
        ),
        "stages.csv": (
            ["code", "label_zh", "label_en", "display_order"],
            [list(s) for s in STAGES],
        ),
        "lines_of_business.csv": (
            ["code", "label_zh", "label_en"],
            [list(x) for x in LINES_OF_BUSINESS],
        ),
        "business_sources.csv": (
            ["code", "label_zh", "label_en"],
            [list(x) for x in BUSINESS_SOURCES],
        ),
    }


# The business calendar covers the years the chinese-calendar package knows; a legal period that
# ends outside it is not rolled forward (docs/definitions.md, "Legal clocks").
CALENDAR_FIRST_DAY = date(2016, 1, 1)
CALENDAR_LAST_DAY = date(2026, 12, 31)


def business_calendar_rows(first: date = CALENDAR_FIRST_DAY, last: date = CALENDAR_LAST_DAY) -> list[list]:
    """One row per day: calendar_date, is_working_day, is_public_holiday, holiday_name,
    period_end_date. A working day is a day the State Council's calendar has people at work
    (Monday-Friday unless a public holiday, and the make-up Saturdays/Sundays 调休上班). The
    period_end_date is the day itself when it is a working day, else the first working day after
    it: where a legal period whose last day is this day really ends (Civil Code art. 203: a period
    whose last day is a statutory day of rest ends on the day after the rest)."""
    # Deferred: chinese-calendar is a dev dependency (only writing the seed needs it), so the
    # module imports on a `make run` install without it.
    import chinese_calendar

    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    working = [chinese_calendar.is_workday(d) for d in days]
    rows: list[list] = []
    next_working = None
    # Walk backwards so each day knows the next working day; a trailing run of rest days at the end
    # of the calendar has none (left empty: the model then keeps the day itself).
    for d, is_working in zip(reversed(days), reversed(working)):
        if is_working:
            next_working = d
        on_holiday, name = chinese_calendar.get_holiday_detail(d)
        public = bool(on_holiday and name)
        rows.append([d.isoformat(), "true" if is_working else "false", "true" if public else "false",
                     name if public else "", next_working.isoformat() if next_working else ""])
    rows.reverse()
    return rows


def seed_texts() -> dict[str, str]:
    """file name -> exact file content (UTF-8, no BOM, LF line ends)."""
    out = {}
    tables = dict(seed_tables())
    tables["business_calendar.csv"] = (
        ["calendar_date", "is_working_day", "is_public_holiday", "holiday_name", "period_end_date"],
        business_calendar_rows())
    for name, (header, rows) in tables.items():
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        out[name] = buf.getvalue()
    return out


def write_seeds(seeds_dir: Path) -> list[Path]:
    """Write the generated seed CSVs into ``seeds_dir``; returns the paths written."""
    seeds_dir = Path(seeds_dir)
    seeds_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in seed_texts().items():
        path = seeds_dir / name
        path.write_text(text, encoding="utf-8", newline="")
        written.append(path)
    return written
