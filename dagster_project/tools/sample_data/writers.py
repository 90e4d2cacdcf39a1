"""Formatting and file writing for the generator.

Rows are formatted into text as soon as they are drawn and parked in per-day buckets until their
day's file is written, so the generator only keeps future rows in memory. Formatting is
vectorised where numpy can do it (timestamps) and otherwise done in bulk with list comprehensions.
"""

from __future__ import annotations

import io
import zipfile
from collections import defaultdict
from datetime import date, datetime
from pathlib import Path

import numpy as np

SECONDS_PER_DAY = 86_400
# Fixed workbook and zip-entry times: the same seed must give byte-identical .xlsx files.
FIXED_XLSX_TIME = datetime(2000, 1, 1, 0, 0, 0)


class Clock:
    """Timestamps are int64 seconds since the start date's midnight (local time, no offset).

    Formatting goes through lookup tables (one string per day of the range, one per second of
    the day): far cheaper than numpy's datetime-to-string on the many small arrays of a day."""

    def __init__(self, start: date, days: int = 0):
        self.origin_s = np.datetime64(start.isoformat(), "s")
        self.origin_d = np.datetime64(start.isoformat(), "D")
        self._day_lo = -800  # the opening book reaches a year back; claims run well past the end
        span = np.arange(self._day_lo, days + 1600)
        self._dates = np.datetime_as_string(self.origin_d + span, unit="D").tolist()
        self._call_dates = [x.replace("-", "/") for x in self._dates]
        self._tod = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]

    def _format(self, seconds, dates: list[str], fallback) -> list[str]:
        seconds = np.asarray(seconds, dtype=np.int64)
        if len(seconds) == 0:
            return []
        day = seconds // SECONDS_PER_DAY
        idx = day - self._day_lo
        if idx.min() < 0 or idx.max() >= len(dates):
            return fallback(seconds)
        tod = self._tod
        return [dates[a] + " " + tod[b] for a, b in zip(idx.tolist(), (seconds - day * SECONDS_PER_DAY).tolist())]

    def _numpy_ts(self, seconds: np.ndarray) -> list[str]:
        s = np.datetime_as_string(self.origin_s + seconds, unit="s")
        return np.strings.replace(s, "T", " ").tolist()

    def ts(self, seconds: np.ndarray) -> list[str]:
        """``YYYY-MM-DD HH:MM:SS``"""
        return self._format(seconds, self._dates, self._numpy_ts)

    def call_ts(self, seconds: np.ndarray) -> list[str]:
        """``YYYY/MM/DD HH:MM:SS`` as the CTI exports it."""
        return self._format(seconds, self._call_dates,
                            lambda s: [x.replace("-", "/") for x in self._numpy_ts(s)])

    def dates(self, days: np.ndarray) -> list[str]:
        days = np.asarray(days, dtype=np.int64)
        if len(days) and (days.min() >= self._day_lo and days.max() - self._day_lo < len(self._dates)):
            return [self._dates[i] for i in (days - self._day_lo).tolist()]
        return np.datetime_as_string(self.origin_d + days, unit="D").tolist()

    def date_of(self, day: int) -> date:
        return (self.origin_d + np.int64(day)).astype(date)


def with_nulls(values: list[str], present: np.ndarray, null: str = "") -> list[str]:
    """Replace the values where ``present`` is False by ``null`` (empty CSV field = null)."""
    return [v if p else null for v, p in zip(values, present.tolist())]


def money(values: np.ndarray) -> list[str]:
    return [f"{v:.2f}" for v in np.asarray(values, dtype=np.float64).tolist()]


class LineBuckets:
    """Formatted rows waiting for their day's file, ordered by timestamp when written."""

    def __init__(self, last_day: int):
        self.last_day = last_day
        self._buckets: dict[int, list[tuple[np.ndarray, list]]] = defaultdict(list)

    def add(self, days: np.ndarray, ts: np.ndarray, rows: list) -> None:
        days = np.asarray(days, dtype=np.int64)
        if len(rows) == 0:
            return
        keep = days <= self.last_day  # rows after the last day are never exported
        order = np.argsort(days, kind="stable")
        order = order[keep[order]]
        if len(order) == 0:
            return
        sorted_days = days[order]
        cuts = np.flatnonzero(np.diff(sorted_days)) + 1
        ts = np.asarray(ts, dtype=np.int64)
        for idx in np.split(order, cuts):
            self._buckets[int(days[idx[0]])].append((ts[idx], [rows[i] for i in idx.tolist()]))

    def pop(self, day: int) -> list:
        """The day's rows in timestamp order (stable: ties keep insertion order)."""
        chunks = self._buckets.pop(day, [])
        if not chunks:
            return []
        ts = np.concatenate([c[0] for c in chunks])
        rows = [r for c in chunks for r in c[1]]
        return [rows[i] for i in np.argsort(ts, kind="stable").tolist()]

    def pending(self) -> int:
        return sum(len(c[1]) for chunks in self._buckets.values() for c in chunks)


def write_csv(path: Path, header: list[str] | None, lines: list[str], encoding: str, append: bool = False) -> None:
    """Generated values never contain commas, quotes or newlines, so no quoting is needed."""
    text = (",".join(header) + "\n" if header else "") + "".join(line + "\n" for line in lines)
    if append and encoding == "utf-8-sig":
        encoding = "utf-8"  # the BOM belongs at the start of the file only
    with open(path, "a" if append else "w", encoding=encoding, newline="") as fh:  # utf-8-sig writes the BOM
        fh.write(text)


def write_jsonl(path: Path, lines: list[str]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write("".join(line + "\n" for line in lines))


def write_json_array(path: Path, elements: list[str]) -> None:
    body = "[\n" + ",\n".join(elements) + "\n]\n" if elements else "[]\n"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(body)


class _FixedTimeZip(zipfile.ZipFile):
    """A ZipFile that stamps every entry with the same time (openpyxl writes entries by name,
    which would otherwise take the current wall-clock time)."""

    def writestr(self, zinfo_or_arcname, data, compress_type=None, compresslevel=None):
        if not isinstance(zinfo_or_arcname, zipfile.ZipInfo):
            zinfo_or_arcname = zipfile.ZipInfo(zinfo_or_arcname, date_time=FIXED_XLSX_TIME.timetuple()[:6])
            zinfo_or_arcname.compress_type = zipfile.ZIP_DEFLATED
            zinfo_or_arcname.external_attr = 0o600 << 16
        super().writestr(zinfo_or_arcname, data, compress_type, compresslevel)

    def write(self, filename, arcname=None, compress_type=None, compresslevel=None):
        # Worksheets arrive as temporary files, whose mtime would end up in the entry.
        with open(filename, "rb") as fh:
            self.writestr(arcname or Path(filename).name, fh.read())


def write_xlsx(path: Path, title: str, header: list[str], rows: list[list], sheet_title: str,
               date_columns: tuple[int, ...] = ()) -> None:
    """One sheet: a title row, then the header row, then the data rows. Deterministic bytes."""
    # deferred: openpyxl and its writer cost 0.9 s to import; only the audit workbooks need them
    from openpyxl import Workbook
    from openpyxl.writer.excel import ExcelWriter

    wb = Workbook()
    ws = wb.active
    ws.title = sheet_title
    ws.append([title])
    ws.append(header)
    for row in rows:
        ws.append(row)
    for col in date_columns:
        for (cell,) in ws.iter_rows(min_row=3, min_col=col + 1, max_col=col + 1):
            cell.number_format = "yyyy-mm-dd"
    wb.properties.creator = "cs-warehouse generator"
    wb.properties.created = FIXED_XLSX_TIME
    wb.properties.modified = FIXED_XLSX_TIME
    buf = io.BytesIO()
    archive = _FixedTimeZip(buf, "w", zipfile.ZIP_DEFLATED, allowZip64=True)
    ExcelWriter(wb, archive).save()  # save_workbook() would stamp 'modified' with now()
    path.write_bytes(buf.getvalue())
