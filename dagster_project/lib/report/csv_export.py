"""CSV export of the snapshot rows, safe to open in Excel.

Formula injection: a spreadsheet executes a text cell that starts with = + - @ (or a tab / carriage
return, which some programs strip before looking). Text cells starting with one of these get a
leading apostrophe so they are shown as text. Numbers are written as numbers and never prefixed:
-0.05 is a value, not a formula, and prefixing it would turn it into text.

UTF-8 with a byte-order mark, so Excel on a Chinese Windows shows the Chinese labels correctly.
"""

from __future__ import annotations

import csv
import io
import math
from typing import Any, Iterable, Sequence

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def guard_cell(value: Any) -> Any:
    """The value to write into a CSV cell: text that a spreadsheet would evaluate is quoted with an
    apostrophe; numbers, booleans and None pass through."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and math.isnan(value):
            return ""
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([guard_cell(h) for h in header])
    for row in rows:
        writer.writerow([guard_cell(v) for v in row])
    return buffer.getvalue()


def to_csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    return to_csv(header, rows).encode("utf-8-sig")
