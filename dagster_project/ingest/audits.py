"""Mystery-shopping audits: ``audits/YYYY-MM.xlsx``, one sheet, a title row above the header
(contract names as headers); one audit per row. Monthly partitions.

Reading: openpyxl (read-only, cached values) — the workbooks are small. Row 1 is the title
(e.g. "都邦财险 模拟赔案/暗访检查记录 2024年01月"), row 2 the header, data from row 3; a record's
``_source_line`` is its sheet row number. Completely empty rows are not records.

**Title row missing** (header on row 1): the file *fails* its partition with a message saying so.
The layout is part of the landing contract; a changed export template should be noticed and fixed
at the source rather than silently accepted (and a guessed header row could shift every record).
Cells are turned into text before validation: dates as ``YYYY-MM-DD`` (a date-time at midnight
too), whole floats without ``.0``; a non-empty cell to the right of the header is a
WRONG_COLUMN_COUNT record.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

from dagster_project.ingest.contract import BRANCH_CODE_PATTERN, Column, SourceContract
from dagster_project.ingest.landing import LandingFile
from dagster_project.ingest.readers import FileUnreadable, StageResult, create_staging_table, insert_rows
from dagster_project.reference import BRANCH_CODES

SCENARIOS = ("SIMULATED_CLAIM", "ANONYMOUS_VISIT", "ANONYMOUS_CALL")

CONTRACT = SourceContract(
    source="audits",
    folder="audits",
    file_suffix=".xlsx",
    partitioning="monthly",
    file_format="xlsx",
    encoding="binary",
    key=("audit_id",),
    description="Mystery-shopping audits (模拟赔案/暗访) of surveyor arrival, assessment and payment.",
    columns=(
        Column("audit_id", "VARCHAR", required=True, pattern=r"^AU[0-9]{8}$"),
        Column("audit_date", "DATE", required=True, no_future=True),
        Column("branch_code", "VARCHAR", required=True, codes=BRANCH_CODES, pattern=BRANCH_CODE_PATTERN),
        Column("auditor_id", "VARCHAR", required=True),
        Column("scenario", "VARCHAR", required=True, codes=SCENARIOS),
        Column("surveyor_arrival_minutes", "INTEGER", min_value=0, max_value=1440),
        Column("sla_minutes", "INTEGER", required=True, min_value=1, max_value=1440),
        Column("assessment_score", "DECIMAL(5,1)", min_value=0, max_value=100),
        Column("payment_convenience_score", "DECIMAL(5,1)", min_value=0, max_value=100),
        Column("passed", "VARCHAR", required=True, codes=("Y", "N")),
        Column("findings", "VARCHAR"),
    ),
)


TITLE_ROWS = 1  # rows above the header


def cell_text(value: object) -> str | None:
    """A worksheet cell as the text the contract validates."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if (value.hour, value.minute, value.second, value.microsecond) == (0, 0, 0, 0):
            return value.date().isoformat()
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "Y" if value else "N"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value)
    return text if text.strip() else None


def read_sheet(path: Path, rel_path: str) -> list[tuple[int, list[str | None]]]:
    """(sheet row number, cell texts) of every row of the workbook's first sheet."""
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile/KeyError/... for a damaged workbook
        raise FileUnreadable(f"{rel_path}: not a readable xlsx workbook ({type(exc).__name__}: {exc})") from exc
    try:
        sheet = workbook.worksheets[0]
        return [(i, [cell_text(v) for v in row]) for i, row in enumerate(sheet.iter_rows(values_only=True), start=1)]
    finally:
        workbook.close()


def header_positions(rows: list[tuple[int, list[str | None]]], rel_path: str) -> tuple[int, dict[str, int]]:
    """(header row number, contract column -> cell index); raises FileUnreadable."""
    names = set(CONTRACT.column_names)
    if not rows:
        raise FileUnreadable(f"{rel_path}: the sheet is empty (no title row, no header)")
    first = [c.strip() if c else c for c in rows[0][1]]
    if names <= set(first):
        raise FileUnreadable(
            f"{rel_path}: title row missing — the header is on row 1, expected a title row above it "
            "and the header on row 2"
        )
    if len(rows) <= TITLE_ROWS:
        raise FileUnreadable(f"{rel_path}: no header row below the title row")
    row_no, cells = rows[TITLE_ROWS]
    header = [c.strip() if c else "" for c in cells]
    missing = [c.name for c in CONTRACT.columns if c.name not in header]
    if missing:
        kind = "required " if any(CONTRACT.column(m).required for m in missing) else ""
        raise FileUnreadable(
            f"{rel_path}: missing {kind}column(s) {', '.join(missing)} in the header on row {row_no}"
        )
    return row_no, {name: header.index(name) for name in CONTRACT.column_names}


def sheet_records(rows, positions: dict[str, int], header_row: int):
    """Staging tuples (line, raw_text, pre_reason, pre_message, *values) of the data rows."""
    width = max(positions.values()) + 1
    for row_no, cells in rows:
        if row_no <= header_row or all(c is None for c in cells):
            continue
        raw_text = json.dumps(cells, ensure_ascii=False)
        extra = [i + 1 for i, c in enumerate(cells) if i >= width and c is not None]
        if extra:
            yield (row_no, raw_text, "WRONG_COLUMN_COUNT",
                   f"row {row_no}: values beyond the header in column(s) {extra}",
                   *([None] * len(positions)))
            continue
        padded = cells + [None] * (width - len(cells))
        yield (row_no, raw_text, None, None, *(padded[positions[c]] for c in CONTRACT.column_names))


def stage_files(con, files: list[LandingFile], table: str, workdir: Path) -> StageResult:
    """Read each workbook with openpyxl and insert its rows as text into the staging table."""
    result = StageResult(table)
    create_staging_table(con, CONTRACT, table)
    for f in files:
        try:
            rows = read_sheet(f.path, f.rel_path)
            header_row, positions = header_positions(rows, f.rel_path)
        except FileUnreadable as exc:
            result.failures[f.rel_path] = str(exc)
            continue
        records = [(f.rel_path, line, f.partition, *rest) for line, *rest in sheet_records(rows, positions, header_row)]
        insert_rows(con, table, records)
    return result
