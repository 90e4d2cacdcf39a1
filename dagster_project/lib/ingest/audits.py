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

**Extra sheets**: the audit sheet is the one with the contract header on row 2; another sheet
(notes, a pivot) is ignored with a note naming it. No such sheet: the first sheet is read (and
fails with the title/header message); several: the file fails, naming them.
**Merged cells** in the data rows (a branch or auditor typed once over several rows): openpyxl
reads the merged area as one value in its top-left cell and empty cells below; what the auditor
meant is that value for every row of the area, so it is filled in, with a note naming the ranges.
Merges in the title or header rows are layout and ignored.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

from dagster_project.lib.ingest.contract import BRANCH_CODE_PATTERN, Column, SourceContract
from dagster_project.lib.ingest.landing import LandingFile
from dagster_project.lib.ingest.guard import describe, printable_name
from dagster_project.lib.ingest.readers import (
    FileUnreadable, StageResult, create_staging_table, header_label, insert_rows,
)
from dagster_project.lib.reference import BRANCH_CODES

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
        Column("findings", "VARCHAR", free_text=True),
    ),
    # The workbook of a month holds that month's audits (no_future catches a later date).
    row_checks=((
        "{audit_date} < CAST(_partition AS DATE)",
        "OUTSIDE_FILE_MONTH",
        "'audit_date ' || CAST({audit_date} AS VARCHAR) || ' is before the workbook''s month ' || left(_partition, 7)",
    ),),
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


def _has_contract_header(rows: list[list[object]]) -> bool:
    names = set(CONTRACT.column_names)
    return len(rows) > TITLE_ROWS and names <= {str(c).strip() for c in rows[TITLE_ROWS] if c is not None}


def fill_merged(rows: list[list[object]], merged: list[tuple[int, int, int, int]], first_data_row: int
                ) -> list[str]:
    """Copy the top-left value of every merged range (min_row, min_col, max_row, max_col; 1-based)
    that lies in the data rows into each of its cells, in place; returns the ranges filled (pure)."""
    filled = []
    for min_row, min_col, max_row, max_col in sorted(merged):
        if min_row < first_data_row:
            continue  # title or header layout
        value = rows[min_row - 1][min_col - 1] if len(rows[min_row - 1]) >= min_col else None
        for r in range(min_row, max_row + 1):
            row = rows[r - 1]
            row.extend([None] * (max_col - len(row)))
            for c in range(min_col, max_col + 1):
                row[c - 1] = value
        filled.append(f"{_cell_name(min_row, min_col)}:{_cell_name(max_row, max_col)}")
    return filled


def _cell_name(row: int, col: int) -> str:
    from openpyxl.utils import get_column_letter  # deferred: openpyxl costs 0.6 s to import; only the audit workbooks need it

    return f"{get_column_letter(col)}{row}"


def _is_formula(value: object) -> bool:
    return (isinstance(value, str) and value.startswith("=")) or type(value).__name__ in ("ArrayFormula", "DataTableFormula")


def read_sheet(path: Path, rel_path: str, notes: list[str] | None = None,
               formulas: dict[int, list[int]] | None = None) -> list[tuple[int, list[str | None]]]:
    """(sheet row number, cell texts) of every row of the workbook's audit sheet (see the module
    docstring); repairs (another sheet ignored, merged cells filled) are appended to ``notes``,
    and the cells holding a formula without a cached value to ``formulas`` (row -> 0-based cell
    indexes): openpyxl reads such a cell as empty, which is not what the auditor wrote."""
    from openpyxl import load_workbook  # deferred: openpyxl costs 0.6 s to import; only the audit workbooks need it

    notes = notes if notes is not None else []
    formulas = formulas if formulas is not None else {}
    try:
        # Not read-only: merged-cell ranges are only known to a fully loaded sheet (the monthly
        # workbooks are small). Loaded twice: cached values, and the formulas behind them.
        # Read from an open file: openpyxl refuses a path without an .xlsx suffix (the reader
        # passes /proc/self/fd/<n>, the descriptor the landing boundary opened).
        with open(path, "rb") as fh:
            workbook = load_workbook(fh, data_only=True)
            fh.seek(0)
            formula_book = load_workbook(fh, data_only=False)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises zipfile/KeyError/... for a damaged workbook
        raise FileUnreadable(f"{rel_path}: not a readable xlsx workbook ({describe(exc)})") from None
    try:
        sheets = [(ws, [list(r) for r in ws.iter_rows(values_only=True)]) for ws in workbook.worksheets]
        with_header = [(ws, rows) for ws, rows in sheets if _has_contract_header(rows)]
        if len(with_header) > 1:
            raise FileUnreadable(f"{rel_path}: several sheets have the audit header on row {TITLE_ROWS + 1}: "
                                 + ", ".join(repr(printable_name(ws.title, 31)) for ws, _ in with_header))
        if not sheets:
            raise FileUnreadable(f"{rel_path}: the workbook has no sheet")
        sheet, rows = with_header[0] if with_header else sheets[0]
        others = [printable_name(ws.title, 31) for ws, _ in sheets if ws is not sheet]
        if others and with_header:
            notes.append(f"read sheet {printable_name(sheet.title, 31)!r}; ignored other sheet(s) "
                         f"{', '.join(map(repr, others))}")
        merged = [(m.min_row, m.min_col, m.max_row, m.max_col) for m in sheet.merged_cells.ranges]
        filled = fill_merged(rows, merged, TITLE_ROWS + 2)
        if filled:
            notes.append(f"merged cells filled with their top-left value: {', '.join(filled)}")
        formula_sheet = formula_book[sheet.title]
        for i, row in enumerate(formula_sheet.iter_rows(values_only=True), start=1):
            cached = rows[i - 1] if i - 1 < len(rows) else []
            uncached = [j for j, v in enumerate(row)
                        if _is_formula(v) and (j >= len(cached) or cached[j] is None)]
            if uncached:
                formulas[i] = uncached
        return [(i, [cell_text(v) for v in row]) for i, row in enumerate(rows, start=1)]
    finally:
        workbook.close()
        formula_book.close()


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


def sheet_records(rows, positions: dict[str, int], header_row: int, formulas: dict[int, list[int]] | None = None,
                  header_width: int | None = None):
    """Staging tuples (line, raw_text, pre_reason, pre_message, *values) of the data rows; a value
    right of the last header cell is WRONG_COLUMN_COUNT (one under an unknown named column is
    schema drift: ignored, noted per file)."""
    formulas = formulas or {}
    width = max(header_width or 0, max(positions.values()) + 1)
    column_of = {i: name for name, i in positions.items()}
    for row_no, cells in rows:
        if row_no <= header_row or (all(c is None for c in cells) and row_no not in formulas):
            continue
        raw_text = json.dumps(cells, ensure_ascii=False)
        extra = [i + 1 for i, c in enumerate(cells) if i >= width and c is not None]
        if extra:
            yield (row_no, raw_text, "WRONG_COLUMN_COUNT",
                   f"row {row_no}: values beyond the header in column(s) {extra}",
                   *([None] * len(positions)))
            continue
        uncached = [column_of.get(i, f"column {i + 1}") for i in formulas.get(row_no, [])]
        if uncached:
            yield (row_no, raw_text, "FORMULA_NO_VALUE",
                   f"row {row_no}: {', '.join(uncached)}: a formula without a calculated value (the workbook was "
                   "saved without recalculation); the value is unknown, not empty",
                   *([None] * len(positions)))
            continue
        padded = cells + [None] * (width - len(cells))
        yield (row_no, raw_text, None, None, *(padded[positions[c]] for c in CONTRACT.column_names))


def stage_files(con, files: list[LandingFile], table: str, workdir: Path) -> StageResult:
    """Read each workbook with openpyxl and insert its rows as text into the staging table."""
    result = StageResult(table)
    create_staging_table(con, CONTRACT, table)
    for f in files:
        notes: list[str] = []
        formulas: dict[int, list[int]] = {}
        try:
            if f.bytes == 0:
                result.empty.add(f.rel_path)
                raise FileUnreadable(f"{f.rel_path}: empty file (0 bytes)")
            rows = read_sheet(f.path, f.rel_path, notes, formulas)
            header_row, positions = header_positions(rows, f.rel_path)
            header_cells = rows[header_row - 1][1]
            header_width = max((i + 1 for i, c in enumerate(header_cells) if c and c.strip()), default=0)
            records = [(f.rel_path, line, f.partition, *rest)
                       for line, *rest in sheet_records(rows, positions, header_row, formulas, header_width)]
        except FileUnreadable as exc:
            result.failures[f.rel_path] = str(exc)
            continue
        except Exception as exc:  # noqa: BLE001 - any failure of one workbook is its reason
            result.failures[f.rel_path] = f"{f.rel_path}: cannot be read as an xlsx workbook: {describe(exc)}"
            continue
        for text in notes:
            result.note(f.rel_path, text)
        header = [c.strip() if c else "" for c in rows[header_row - 1][1]]
        unknown = [h for h in header if h and h not in CONTRACT.column_names]
        if unknown:
            result.note(f.rel_path, f"schema drift: {len(unknown)} column(s) not in the contract, ignored: "
                                    + ", ".join(header_label(h) for h in unknown[:10]))
        insert_rows(con, table, records)
    return result
