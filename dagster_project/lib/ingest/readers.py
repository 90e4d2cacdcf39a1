"""Readers that turn landing files into the common VARCHAR staging shape (docs/ingest.md,
"Physical accounting").

Everything is read as text first (``validate`` converts and checks it), and many files of a source
are read by one DuckDB statement. A file that cannot be read at all is *isolated*: when a batched
statement fails, the batch is retried file by file and only the unreadable file fails, with a
message that names it (and never quotes its content) — the others still load.

**Records and lines.** A landing file is accounted for line by line: every physical line (ended
by LF, CRLF or a lone CR) after the header is part of exactly one record, loaded or quarantined,
or is blank (not a record; counted in a note). A record is one line, except that a quoted CSV
field may hold line breaks: lines joined by a quoted line break are one record when the quote
closes and the joined text has the header's number of fields. An unterminated quote never
swallows what follows: the line is quarantined (BAD_QUOTING) and the next line starts a new
record. ``_source_line`` is the record's first line counted from the header (line 0).

CSV (``stage_csv``): a byte-level **pre-scan** of each file (line endings, quotes per line, blank
lines) decides the path. Clean files — the normal case — go through DuckDB's
``read_csv([...], store_rejects=true)`` (the fast path); lines with the wrong number of fields
or invalid UTF-8 land in DuckDB's reject table and are staged as quarantine rows. After the read
the records of each file are counted against the pre-scan's line count; a file whose counts do
not match, or whose pre-scan found an odd number of quotes on a line, a lone CR, mixed line
endings or a blank line, is read by the **careful path** instead: a line-based Python parser that
applies the rules above (and decodes line by line, so one bad byte quarantines its own line).
``raw_text`` of a rejected line is the line as landed; parsed rows of the fast path leave it NULL
and the loader rebuilds it only for the rows it quarantines.

JSON Lines (``stage_jsonl``): ``read_text`` + ``string_split`` rather than ``read_json``, because a
line that is not JSON must become one quarantined record (reason BAD_JSON) with its line number,
not an error for the whole batch; the fields come out with ``json_extract_string`` in one pass.
Blank lines are not records. A line that is not JSON but becomes a JSON object when joined with
the next line (a raw line break typed inside a comment, which JSON does not allow) is joined —
the break kept as ``\\n`` — and the record carries a note; a record broken over more lines stays
BAD_JSON. A file with a lone CR or invalid UTF-8 is split and decoded line by line in Python.

JSON array (``stage_json_array``): one ``read_text`` for the batch; a file that is not a valid JSON
array (truncated, not an array, not UTF-8) fails; each element is a record numbered from 1.

Both JSON readers quarantine a record that repeats a key (DUPLICATE_JSON_KEY: parsers disagree
on which value wins) and note keys the contract does not know (schema drift).

Repairs of the file's framing that do not change any value are made and noted per file
(``StageResult.notes``): a byte-order mark where none is expected (or none where one is), CRLF,
lone-CR or mixed line endings, a trailing delimiter on every line (an unnamed empty last column:
a value there quarantines the row), unknown extra columns (schema drift: ignored, named in the
note). A header line repeated inside the file (concatenated exports) is not a record: it is
quarantined as REPEATED_HEADER so the counts still reconcile.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import duckdb

from dagster_project.lib.ingest.contract import SourceContract, registered_contracts
from dagster_project.lib.ingest.guard import describe, known_condition, printable_name, scrub
from dagster_project.lib.ingest.landing import LandingFile
from dagster_project.lib.ingest.validate import quote_ident
from dagster_project.lib.sql import sql_literal

HEADER_PROBE_BYTES = 1 << 16
# Upper bound of landing bytes read by one statement (keeps memory flat at large scales).
BATCH_BYTES = 256 << 20
PRESCAN_CHUNK_BYTES = 8 << 20
MAX_LINE_BYTES = 2_000_000  # DuckDB's maximum line size; the careful path applies the same limit
# A quoted field may span at most this many lines; an open quote that does not close within them
# is a stray quote (its line is quarantined), not a field.
MAX_QUOTED_LINES = 50
CAREFUL_INSERT_ROWS = 5000

CSV_REJECT_REASONS = {
    "MISSING COLUMNS": "WRONG_COLUMN_COUNT",
    "TOO MANY COLUMNS": "WRONG_COLUMN_COUNT",
    "INVALID ENCODING": "BAD_ENCODING",
    "UNQUOTED VALUE": "BAD_QUOTING",
    "LINE SIZE OVER MAXIMUM": "LINE_TOO_LONG",
}
# Our own words for each rejection (DuckDB's messages may quote the line).
REJECT_MESSAGES = {
    "WRONG_COLUMN_COUNT": "a different number of fields than the header",
    "BAD_ENCODING": "bytes that are not valid in the file's encoding",
    "BAD_QUOTING": "a quote that does not close, or text after a closing quote",
    "LINE_TOO_LONG": f"longer than the maximum of {MAX_LINE_BYTES:,} bytes",
    "UNPARSEABLE_LINE": "a line that cannot be parsed as CSV",
}


class FileUnreadable(Exception):
    """A landing file that cannot be read at all; the message names the file and the problem."""


@dataclass
class StageResult:
    table: str
    failures: dict[str, str] = field(default_factory=dict)  # rel_path -> message
    notes: dict[str, list[str]] = field(default_factory=dict)  # rel_path -> file-level repairs
    empty: set[str] = field(default_factory=set)  # files with no content at all (whitespace only)

    def note(self, rel_path: str, text: str) -> None:
        self.notes.setdefault(rel_path, []).append(text)


def create_staging_table(con: duckdb.DuckDBPyConnection, contract: SourceContract, table: str) -> None:
    cols = [
        "_file VARCHAR", "_line BIGINT", "_partition VARCHAR", "raw_text VARCHAR",
        "_pre_reason VARCHAR", "_pre_message VARCHAR",
    ] + [f"{quote_ident(c)} VARCHAR" for c in contract.column_names] + [
        "_pre_note VARCHAR",  # a repair the reader made to the record (last: positional inserts)
    ]
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} ({', '.join(cols)})")


def batches(files: list[LandingFile], max_bytes: int = BATCH_BYTES) -> list[list[LandingFile]]:
    """Consecutive groups of files whose total size stays under ``max_bytes`` (at least one file)."""
    groups: list[list[LandingFile]] = []
    current: list[LandingFile] = []
    size = 0
    for f in files:
        if current and size + f.bytes > max_bytes:
            groups.append(current)
            current, size = [], 0
        current.append(f)
        size += f.bytes
    if current:
        groups.append(current)
    return groups


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: list[tuple]) -> None:
    """Insert many small rows in one statement (one list parameter per column, unnested side by
    side) — ``executemany`` costs a round trip per row."""
    if not rows:
        return
    columns = list(zip(*rows))
    # Trailing table columns the rows do not supply (e.g. staging's ``_pre_note``) stay NULL.
    width = len(con.execute(f"SELECT * FROM {table} LIMIT 0").description)
    padding = [", NULL"] * (width - len(columns)) if width > len(columns) else []
    con.execute(f"INSERT INTO {table} SELECT {', '.join(['unnest(?)'] * len(columns))}{''.join(padding)}",
                [list(c) for c in columns])


def _register_files(con, files: list[LandingFile], read_paths: dict[str, Path]) -> list[str]:
    """A temp table mapping the path DuckDB reports back to the landing file's identity."""
    rows = [(str(read_paths.get(f.rel_path, f.path)), f.rel_path, f.partition) for f in files]
    con.execute("CREATE OR REPLACE TEMP TABLE _stage_files (read_path VARCHAR, rel_path VARCHAR, partition VARCHAR)")
    insert_rows(con, "_stage_files", rows)
    return [r[0] for r in rows]


def _reraise_known(exc: BaseException, where: str) -> None:
    """A full disk or a lost lock is not a property of one file: let it stop the run."""
    condition = known_condition(exc, where)
    if condition is not None and type(condition).__name__ in ("DiskFull", "WarehouseBusy"):
        raise condition from None


def _isolate(files: list[LandingFile], run_batch, failures: dict[str, str], what: str) -> None:
    """Run ``run_batch`` on all files; if it fails, retry one file at a time. Any exception of a
    single file (DuckDB, encoding, recursion, ...) becomes that file's failure, scrubbed."""
    try:
        run_batch(files)
        return
    except Exception as exc:  # noqa: BLE001 - every failure of a file becomes its reason
        _reraise_known(exc, "the work file")
        if len(files) == 1:
            failures[files[0].rel_path] = f"{files[0].rel_path}: cannot be read as {what}: {describe(exc)}"
            return
    for f in files:
        try:
            run_batch([f])
        except Exception as exc:  # noqa: BLE001
            _reraise_known(exc, "the work file")
            failures[f.rel_path] = f"{f.rel_path}: cannot be read as {what}: {describe(exc)}"


def _delete_staged(con, table: str, rel_paths: list[str]) -> None:
    if rel_paths:
        con.execute(f"DELETE FROM {table} WHERE _file IN (SELECT unnest(?::VARCHAR[]))", [rel_paths])


# --------------------------------------------------------------------------------------- lines


_LINE_BREAK = re.compile(rb"\r\n|\r(?!\n)|\n")


def _line_aligned_blocks(fh, chunk_bytes: int) -> Iterator[bytes]:
    """Blocks of a binary stream that end right after a line terminator (the last one may not);
    a CR at the end of a chunk is held back in case it is the first half of a CRLF."""
    carry = b""
    while True:
        chunk = fh.read(chunk_bytes)
        if not chunk:
            if carry:
                yield carry
            return
        data = carry + chunk
        cut = max(data.rfind(b"\n"), data.rfind(b"\r", 0, len(data) - 1))
        if cut < 0:
            carry = data
            continue
        yield data[: cut + 1]
        carry = data[cut + 1:]


def physical_lines(fh, chunk_bytes: int = PRESCAN_CHUNK_BYTES) -> Iterator[tuple[bytes, bytes]]:
    """(line without its terminator, terminator) of a binary stream; a terminator is LF, CRLF or a
    lone CR; the last line may have none (b""). Nothing after the last terminator is no line."""
    for block in _line_aligned_blocks(fh, chunk_bytes):
        pos = 0
        for m in _LINE_BREAK.finditer(block):
            yield block[pos:m.start()], m.group()
            pos = m.end()
        if pos < len(block):
            yield block[pos:], b""


@dataclass
class Prescan:
    lines: int = 0  # physical lines, the header included
    lf: int = 0
    crlf: int = 0
    lone_cr: int = 0
    blank: int = 0  # empty lines (not the header)
    odd_quotes: int = 0  # lines with an odd number of quote characters
    long_lines: int = 0
    first_line: bytes = b""
    empty: bool = True  # no non-whitespace byte at all

    @property
    def problems(self) -> list[str]:
        out = []
        if self.lone_cr:
            out.append("lone CR line endings")
        if self.crlf and self.lf:
            out.append("mixed CRLF and LF line endings")
        if self.blank:
            out.append("blank lines")
        if self.odd_quotes:
            out.append("a line with an odd number of quotes")
        return out


_ODD_QUOTES = re.compile(rb'^[^"\r\n]*(?:"[^"\r\n]*"[^"\r\n]*)*"[^"\r\n]*\r?$', re.MULTILINE)
_BLANK_LINE = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?=[\r\n])")


def prescan(fh, chunk_bytes: int = PRESCAN_CHUNK_BYTES) -> Prescan:
    """Count lines, line endings, blank lines and lines with an odd number of quotes of a CSV in
    line-aligned blocks: byte operations only (quote, CR and LF are single bytes in UTF-8 and in
    GBK), so the clean case costs a few passes of ``bytes.count`` over the file."""
    scan = Prescan()
    first = True
    ended = True  # the previous block ended with a terminator
    for block in _line_aligned_blocks(fh, chunk_bytes):
        if first:
            end = _LINE_BREAK.search(block)
            scan.first_line = block[: end.start()] if end else block
        if scan.empty and block.strip(b" \t\r\n\x0b\x0c\xef\xbb\xbf"):
            scan.empty = False
        lf = block.count(b"\n")
        cr = block.count(b"\r")
        crlf = block.count(b"\r\n") if cr else 0
        scan.crlf += crlf
        scan.lone_cr += cr - crlf
        scan.lf += lf - crlf
        scan.lines += lf + cr - crlf
        if b'"' in block:
            scan.odd_quotes += sum(1 for _ in _ODD_QUOTES.finditer(block))
        if b"\n\n" in block or b"\r\r" in block or b"\n\r\n" in block:  # rare: only then count them
            scan.blank += len(_BLANK_LINE.findall(block))
        if ended and _LINE_BREAK.match(block):
            scan.blank += 1  # a line break right after the previous one (or at the very start)
        ended = block.endswith((b"\n", b"\r"))
        first = False
    if not ended:
        scan.lines += 1
    return scan


# --------------------------------------------------------------------------------------- CSV


UTF8_BOM = b"\xef\xbb\xbf"


def framing_notes(head: bytes, expect_bom: bool) -> list[str]:
    """File-level repairs seen in the first bytes of a CSV (pure): BOM and line endings."""
    notes = []
    has_bom = head.startswith(UTF8_BOM)
    if has_bom and not expect_bom:
        notes.append("byte-order mark where none is expected: ignored")
    elif expect_bom and not has_bom and head:
        notes.append("byte-order mark missing: read as UTF-8")
    end = head.find(b"\n")
    if end > 0 and head[end - 1:end] == b"\r":
        notes.append("CRLF line endings: read as LF")
    return notes


def decode_header(line: bytes, rel_path: str, encoding: str = "utf-8") -> list[str]:
    """The header fields of a CSV's first line (a UTF-8 BOM is dropped). Raises FileUnreadable."""
    if not line.strip(b" \t\xef\xbb\xbf"):
        raise FileUnreadable(f"{rel_path}: empty first line (no header line)")
    if len(line) > HEADER_PROBE_BYTES:
        raise FileUnreadable(f"{rel_path}: the first line is longer than {HEADER_PROBE_BYTES} bytes (no header line)")
    try:
        text = line.decode("utf-8-sig" if encoding in ("utf-8", "utf-8-sig") else encoding)
    except UnicodeDecodeError as exc:
        raise FileUnreadable(
            f"{rel_path}: the header line is not valid {encoding.upper()} (byte offset {exc.start})") from None
    if "\x00" in text:
        raise FileUnreadable(f"{rel_path}: NUL bytes in the first line (not a header line)")
    try:
        return next(csv.reader(io.StringIO(text), strict=True))
    except (csv.Error, StopIteration):
        raise FileUnreadable(f"{rel_path}: the first line cannot be parsed as a CSV header") from None


def read_csv_header(path: Path, rel_path: str) -> list[str]:
    """The header fields of a UTF-8 CSV file (a BOM is dropped). Raises FileUnreadable."""
    with open(path, "rb") as fh:
        head = fh.read(HEADER_PROBE_BYTES + 1)
    if not head.strip():
        raise FileUnreadable(f"{rel_path}: empty file (no header line)")
    end = _LINE_BREAK.search(head)
    return decode_header(head if end is None else head[: end.start()], rel_path)


def other_source_of(contract: SourceContract, header: list[str]) -> str | None:
    """The source whose contract a header belongs to, if it is not ``contract``'s (a file of
    another source dropped into the wrong folder)."""
    for other in registered_contracts().values():
        if other.source == contract.source:
            continue
        names = {other.header_map.get(h.strip(), h.strip()) for h in header}
        if set(c.name for c in other.columns if c.required) <= names:
            return other.source
    return None


def header_label(name: str) -> str:
    """A header field as a note may name it (it is a column name, not data: the header holds
    every contract column); still escaped, shortened and free of long digit runs."""
    return scrub(printable_name(name.strip(), 40), 40) or "(empty)"


def unknown_columns(contract: SourceContract, header: list[str]) -> list[str]:
    """Header fields that are not contract columns (schema drift), in order; "" (a trailing
    delimiter) is not one."""
    names = [contract.header_map.get(h.strip(), h.strip()) for h in header]
    return [h for h, n in zip(header, names) if n and n not in contract.column_names]


def map_header(contract: SourceContract, header: list[str], rel_path: str) -> list[str]:
    """Landing header -> contract names; fails on a missing or repeated contract column.
    A trailing empty header field (a delimiter at the end of the line) maps to "".

    The message never quotes the first line: when contract columns are missing it may be a data
    line (a file without its header), holding a customer's name and ID number."""
    names = [contract.header_map.get(h.strip(), h.strip()) for h in header]
    repeated = sorted({n for n in names if names.count(n) > 1 and n in contract.column_names})
    if repeated:
        raise FileUnreadable(f"{rel_path}: column(s) repeated in the header: {', '.join(repeated)}")
    missing = [c for c in contract.columns if c.name not in names]
    if missing:
        required = [c.name for c in missing if c.required]
        optional = [c.name for c in missing if not c.required]
        found = [n for n in names if n in contract.column_names]
        parts = []
        other = other_source_of(contract, header)
        if other:
            parts.append(f"this is a {other} file (its header), in the {contract.folder}/ folder — "
                         f"move it to {registered_contracts()[other].folder}/")
        elif not found:
            parts.append(f"the first line is not a header: none of its {len(header)} field(s) is a column "
                         "of the contract (a file without its header line?)")
        if required:
            parts.append("missing required column(s) " + ", ".join(required))
        if optional:
            parts.append("missing column(s) " + ", ".join(optional))
        raise FileUnreadable(f"{rel_path}: {'; '.join(parts)}")
    return names


def stage_csv(
    con: duckdb.DuckDBPyConnection,
    contract: SourceContract,
    files: list[LandingFile],
    table: str,
    *,
    read_paths: dict[str, Path] | None = None,
    failures: dict[str, str] | None = None,
    careful: set[str] | None = None,
    prescans: dict[str, Prescan] | None = None,
) -> StageResult:
    """Stage CSV files: the DuckDB fast path for clean files, the careful path for the others
    (``careful``: files a caller already knows need it; ``read_paths``: transcoded copies)."""
    read_paths = read_paths or {}
    careful = set(careful or ())
    prescans = dict(prescans or {})
    result = StageResult(table, dict(failures or {}))
    create_staging_table(con, contract, table)

    # Group fast-path files by their header: one read_csv per distinct header layout.
    groups: dict[tuple[str, ...], list[LandingFile]] = {}
    for f in files:
        if f.rel_path in result.failures:
            continue
        try:
            if f.rel_path not in prescans:
                with open(f.path, "rb") as fh:
                    prescans[f.rel_path] = prescan(fh)
            scan = prescans[f.rel_path]
            if scan.empty:
                result.empty.add(f.rel_path)
                raise FileUnreadable(f"{f.rel_path}: empty file ({f.bytes} bytes, no header line)")
            if scan.problems or f.rel_path in careful:
                careful.add(f.rel_path)
                continue
            header = read_csv_header(read_paths.get(f.rel_path, f.path), f.rel_path)
            names = map_header(contract, header, f.rel_path)
        except FileUnreadable as exc:
            result.failures[f.rel_path] = str(exc)
            continue
        with open(f.path, "rb") as fh:
            for text in framing_notes(fh.read(HEADER_PROBE_BYTES), contract.encoding == "utf-8-sig"):
                result.note(f.rel_path, text)
        _header_notes(result, contract, f.rel_path, header, names)
        groups.setdefault(tuple(header), []).append(f)

    for header, group in groups.items():
        names = tuple(map_header(contract, list(header), group[0].rel_path))
        for batch in batches(group):
            _isolate(batch, lambda fs, names=names, header=header: _read_csv_batch(
                con, contract, fs, names, table, read_paths, header), result.failures, "CSV")
        # Every physical line must be a record: a file whose counts differ is read again, carefully.
        counts = dict(con.execute(f"SELECT _file, count(*) FROM {table} WHERE _file IN "
                                  "(SELECT unnest(?::VARCHAR[])) GROUP BY _file",
                                  [[f.rel_path for f in group]]).fetchall())
        recount = [f for f in group if f.rel_path not in result.failures
                   and counts.get(f.rel_path, 0) != prescans[f.rel_path].lines - 1]
        _delete_staged(con, table, [f.rel_path for f in recount])
        for f in recount:
            result.notes.pop(f.rel_path, None)
            careful.add(f.rel_path)

    for f in files:
        if f.rel_path in careful and f.rel_path not in result.failures:
            try:
                for text in stage_csv_careful(con, contract, f, table, prescans.get(f.rel_path)):
                    result.note(f.rel_path, text)
            except FileUnreadable as exc:
                _delete_staged(con, table, [f.rel_path])
                result.failures[f.rel_path] = str(exc)
            except Exception as exc:  # noqa: BLE001 - any parse failure is the file's reason
                _reraise_known(exc, "the work file")
                _delete_staged(con, table, [f.rel_path])
                result.failures[f.rel_path] = f"{f.rel_path}: cannot be read as CSV: {describe(exc)}"
    return result


def _header_notes(result: StageResult, contract: SourceContract, rel_path: str, header: list[str],
                  names: list[str]) -> None:
    if names and names[-1] == "" and len(names) > len(contract.columns):
        result.note(rel_path, "trailing delimiter on every line: the empty last column is ignored")
    unknown = unknown_columns(contract, header)
    if unknown:
        result.note(rel_path, f"schema drift: {len(unknown)} column(s) not in the contract, ignored: "
                              + ", ".join(header_label(h) for h in unknown[:10]))


def _read_csv_batch(con, contract: SourceContract, files: list[LandingFile], names: tuple[str, ...],
                    table: str, read_paths: dict[str, Path], header: tuple[str, ...] = ()) -> None:
    paths = _register_files(con, files, read_paths)
    read_cols = {f"c{i}": "VARCHAR" for i in range(len(names))}
    columns_sql = "{" + ", ".join(f"{sql_literal(k)}: 'VARCHAR'" for k in read_cols) + "}"
    path_list = "[" + ", ".join(sql_literal(p) for p in paths) + "]"
    con.execute("DROP TABLE IF EXISTS _csv_rejects")
    con.execute("DROP TABLE IF EXISTS _csv_reject_scans")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _csv_read AS
        SELECT * FROM read_csv({path_list}, header = true, auto_detect = false,
            columns = {columns_sql}, delim = ',', quote = '"', escape = '"',
            filename = true, strict_mode = true, null_padding = false,
            store_rejects = true, rejects_table = '_csv_rejects', rejects_scan = '_csv_reject_scans')"""
    )
    position = {n: i for i, n in enumerate(names)}
    contract_cols = [f"c{position[c]} AS {quote_ident(c)}" for c in contract.column_names]
    null_cols = [f"NULL AS {quote_ident(c)}" for c in contract.column_names]
    # A header line repeated inside the file is not a record; a value under an unnamed header
    # field (beyond the contract's columns) would otherwise be dropped without a word.
    header = header or names
    repeated = " AND ".join(f"coalesce(TRIM(a.c{i}), '') = {sql_literal(h.strip())}" for i, h in enumerate(header))
    unnamed = [i for i, n in enumerate(names) if n == ""]
    unnamed_value = " OR ".join(f"NULLIF(TRIM(a.c{i}), '') IS NOT NULL" for i in unnamed) or "FALSE"
    pre_reason = (f"CASE WHEN {repeated} THEN 'REPEATED_HEADER' "
                  f"WHEN {unnamed_value} THEN 'WRONG_COLUMN_COUNT' END")
    pre_message = (f"CASE WHEN {repeated} THEN 'line ' || (__LINE_EXPR__) || "
                   "': the header line repeated inside the file (not a record)' "
                   f"WHEN {unnamed_value} THEN 'line ' || (__LINE_EXPR__) || "
                   "': a value under an unnamed header field (beyond the last named column)' END")
    reason_case = "CASE CAST(error_type AS VARCHAR) " + " ".join(
        f"WHEN {sql_literal(k)} THEN {sql_literal(v)}" for k, v in CSV_REJECT_REASONS.items()
    ) + " ELSE 'UNPARSEABLE_LINE' END"
    message_case = "CASE " + " ".join(
        f"WHEN reason = {sql_literal(code)} THEN {sql_literal(text)}" for code, text in REJECT_MESSAGES.items()
    ) + " END"
    has_rejects = con.execute("SELECT count(*) > 0 FROM _csv_rejects").fetchall()[0][0]
    if has_rejects:
        # the k-th accepted record sits at data line k + (#rejected lines r_n with r_n - n < k)
        line_expr = ("a.k + (SELECT count(*) FROM rejected_n r "
                     "WHERE r.file_path = a.filename AND r.data_line - r.n < a.k)")
    else:
        line_expr = "a.k"
    pre_reason = pre_reason.replace("__LINE_EXPR__", line_expr)
    pre_message = pre_message.replace("__LINE_EXPR__", line_expr)
    # Rows keep file order (insertion order is preserved) and each file's rows are contiguous, so a
    # row's ordinal k in its file is rowid - (the file's first rowid) + 1: no sort needed.
    con.execute(
        f"""INSERT INTO {table} BY NAME
        WITH rejected AS (
            SELECT *, {reason_case} AS reason FROM (
                SELECT s.file_path, e.line - 1 AS data_line,
                       first(CAST(e.error_type AS VARCHAR) ORDER BY e.column_idx) AS error_type,
                       first(e.csv_line) AS csv_line
                FROM _csv_rejects e JOIN _csv_reject_scans s USING (scan_id, file_id)
                GROUP BY ALL)
        ),
        rejected_n AS (
            SELECT *, row_number() OVER (PARTITION BY file_path ORDER BY data_line) AS n FROM rejected
        ),
        file_start AS (SELECT filename, min(rowid) AS first_rowid FROM _csv_read GROUP BY filename),
        accepted AS (
            SELECT r.*, r.rowid - f.first_rowid + 1 AS k FROM _csv_read r JOIN file_start f USING (filename)
        )
        SELECT m.rel_path AS _file, {line_expr} AS _line, m.partition AS _partition,
               NULL AS raw_text, {pre_reason} AS _pre_reason, {pre_message} AS _pre_message,
               NULL AS _pre_note, {', '.join(contract_cols)}
        FROM accepted a JOIN _stage_files m ON m.read_path = a.filename
        UNION ALL BY NAME
        SELECT m.rel_path AS _file, r.data_line AS _line, m.partition AS _partition,
               r.csv_line AS raw_text,
               r.reason AS _pre_reason,
               'line ' || r.data_line || ': ' || {message_case} AS _pre_message,
               NULL AS _pre_note, {', '.join(null_cols)}
        FROM rejected r JOIN _stage_files m ON m.read_path = r.file_path
        {"ORDER BY _file, _line" if has_rejects else ""}"""
    )


def _line_text(line: bytes, encoding: str) -> str:
    """The text of a landed line for ``raw_text`` (evidence in the private work file only)."""
    return line.decode("utf-8" if encoding == "utf-8-sig" else encoding, errors="backslashreplace").replace("\x00", "\\x00")


def _csv_fields(text: str) -> list[str] | None:
    """The fields of one CSV record (may contain quoted line breaks), None if it is not valid CSV
    (an unterminated quote, text after a closing quote)."""
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error:
        return None
    return rows[0] if len(rows) == 1 else None


def stage_csv_careful(con, contract: SourceContract, f: LandingFile, table: str,
                      scan: Prescan | None = None) -> list[str]:
    """The careful path: stage one CSV line by line (see the module docstring); returns the
    file-level notes. Raises FileUnreadable if the header is unusable."""
    encoding = contract.encoding
    decode_as = "utf-8" if encoding in ("utf-8", "utf-8-sig") else encoding
    notes: list[str] = []
    rows: list[tuple] = []
    blank = 0
    endings = {b"\n": 0, b"\r\n": 0, b"\r": 0}

    def emit(line_no: int, raw_text: str | None, reason: str | None, message: str | None,
             values: list[str | None] | None) -> None:
        rows.append((f.rel_path, line_no, f.partition, raw_text, reason, message,
                     *(values if values is not None else [None] * len(contract.column_names))))
        if len(rows) >= CAREFUL_INSERT_ROWS:
            insert_rows(con, table, rows)
            rows.clear()

    with open(f.path, "rb") as fh:
        lines = physical_lines(fh)
        first = next(lines, None)
        if first is None:
            raise FileUnreadable(f"{f.rel_path}: empty file (no header line)")
        endings[first[1]] = endings.get(first[1], 0) + 1
        header = decode_header(first[0], f.rel_path, encoding)
        names = map_header(contract, header, f.rel_path)
        if first[0].startswith(UTF8_BOM) and encoding == "utf-8":
            notes.append("byte-order mark where none is expected: ignored")
        elif encoding == "utf-8-sig" and not first[0].startswith(UTF8_BOM):
            notes.append("byte-order mark missing: read as UTF-8")
        header_result = StageResult(table)
        _header_notes(header_result, contract, f.rel_path, header, names)
        notes += header_result.notes.get(f.rel_path, [])
        width = len(header)
        position = {n: i for i, n in enumerate(names)}
        unnamed = [i for i, n in enumerate(names) if n == ""]
        stripped_header = [h.strip() for h in header]
        pending: deque[tuple[int, bytes]] = deque()
        line_no = 0

        def next_line() -> tuple[int, bytes] | None:
            nonlocal line_no
            if pending:
                return pending.popleft()
            item = next(lines, None)
            if item is None:
                return None
            line_no += 1
            endings[item[1]] = endings.get(item[1], 0) + 1
            return line_no, item[0]

        def peek(count: int) -> list[tuple[int, bytes]]:
            nonlocal line_no
            while len(pending) < count:
                item = next(lines, None)
                if item is None:
                    break
                line_no += 1
                endings[item[1]] = endings.get(item[1], 0) + 1
                pending.append((line_no, item[0]))
            return list(pending)[:count]

        def record(no: int, text: str, fields: list[str], raw: str | None) -> None:
            if len(fields) != width:
                emit(no, raw if raw is not None else text, "WRONG_COLUMN_COUNT",
                     f"line {no}: {len(fields)} field(s), the header has {width}", None)
            elif [x.strip() for x in fields] == stripped_header:
                emit(no, raw if raw is not None else text, "REPEATED_HEADER",
                     f"line {no}: the header line repeated inside the file (not a record)", None)
            elif any(fields[i].strip() for i in unnamed):
                emit(no, raw if raw is not None else text, "WRONG_COLUMN_COUNT",
                     f"line {no}: a value under an unnamed header field (beyond the last named column)", None)
            else:
                emit(no, None, None, None, [fields[position[c]] for c in contract.column_names])

        while (item := next_line()) is not None:
            no, raw = item
            if not raw:
                blank += 1
                continue
            if len(raw) > MAX_LINE_BYTES:
                emit(no, _line_text(raw[:1000], encoding) + "…", "LINE_TOO_LONG",
                     f"line {no}: {REJECT_MESSAGES['LINE_TOO_LONG']}", None)
                continue
            try:
                text = raw.decode(decode_as)
            except UnicodeDecodeError as exc:
                emit(no, _line_text(raw, encoding), "BAD_ENCODING",
                     f"line {no}: {REJECT_MESSAGES['BAD_ENCODING']} ({encoding.upper()}, byte {exc.start + 1} "
                     "of the line)", None)
                continue
            if raw.count(b'"') % 2 == 1:
                # An open quote: join the following lines while the quote stays open (a quoted
                # line break), if the joined record is valid CSV with the header's fields.
                joined, parts, closed = text, [no], False
                for offset, (other_no, other_raw) in enumerate(peek(MAX_QUOTED_LINES - 1), start=1):
                    try:
                        other_text = other_raw.decode(decode_as)
                    except UnicodeDecodeError:
                        break
                    joined += "\n" + other_text
                    parts.append(other_no)
                    if other_raw.count(b'"') % 2 == 1:
                        closed = True
                        break
                fields = _csv_fields(joined) if closed else None
                if fields is not None and len(fields) == width:
                    for _ in parts[1:]:
                        pending.popleft()
                    record(no, joined, fields, joined)
                    continue
                emit(no, text, "BAD_QUOTING",
                     f"line {no}: a quote that does not close on this line; the line is not a record "
                     "and the next line starts a new one", None)
                continue
            fields = _csv_fields(text)
            if fields is None:
                emit(no, text, "BAD_QUOTING", f"line {no}: {REJECT_MESSAGES['BAD_QUOTING']}", None)
                continue
            record(no, text, fields, text)
    if rows:
        insert_rows(con, table, rows)
    used = {k: v for k, v in endings.items() if v and k}
    if endings.get(b"\r"):
        notes.append("lone CR line endings: read as line breaks")
    if len(used) > 1:
        notes.append("mixed line endings (" + ", ".join({b'\n': 'LF', b'\r\n': 'CRLF', b'\r': 'CR'}[k]
                                                        for k in used) + "): normalized")
    elif used.get(b"\r\n"):
        notes.append("CRLF line endings: read as LF")
    if blank:
        notes.append(f"{blank} blank line(s): not records")
    return notes


# --------------------------------------------------------------------------------------- JSON


def _json_paths(contract: SourceContract) -> str:
    paths = [contract.json_paths.get(c, "$." + c) for c in contract.column_names]
    return "[" + ", ".join(sql_literal(p) for p in paths) + "]"


def json_top_level_keys(contract: SourceContract) -> list[str]:
    """The record keys the contract reads ("$.complainant.name" -> "complainant")."""
    keys = []
    for c in contract.column_names:
        key = contract.json_paths.get(c, "$." + c)[2:].split(".")[0]
        if key not in keys:
            keys.append(key)
    return keys


def _nested_objects(contract: SourceContract) -> list[str]:
    """JSON paths of the nested objects whose fields are contract columns ("$.complainant")."""
    out = []
    for path in contract.json_paths.values():
        parent = path.rsplit(".", 1)[0]
        if parent != "$" and parent not in out:
            out.append(parent)
    return out


def _json_record_select(contract: SourceContract, source: str, record: str, note: str = "NULL",
                        is_object: str | None = None) -> str:
    """Staging rows from ``source`` which has _file, _line, _partition and a JSON text ``record``;
    ``is_object`` names a column of ``source`` that already says whether the record is a JSON
    object (each test parses the text once more). A record that repeats a key (at its top level
    or in a nested object the contract reads) is DUPLICATE_JSON_KEY."""
    object_test = is_object or (f"coalesce(CASE WHEN json_valid({record}) THEN json_type({record}) = 'OBJECT' END, "
                                "FALSE)")
    cols = ", ".join(f"vals[{i + 1}] AS {quote_ident(c)}" for i, c in enumerate(contract.column_names))
    repeats = ["len(_keys) <> len(list_distinct(_keys))"] + [
        f"len(coalesce(json_keys({record}, {sql_literal(p)}), [])) <> "
        f"len(list_distinct(coalesce(json_keys({record}, {sql_literal(p)}), [])))" for p in _nested_objects(contract)]
    repeated = " OR ".join(repeats)
    return f"""
        SELECT _file, _line, _partition, {record} AS raw_text,
               CASE WHEN NOT is_object THEN 'BAD_JSON'
                    WHEN {repeated} THEN 'DUPLICATE_JSON_KEY' END AS _pre_reason,
               CASE WHEN NOT is_object THEN 'record ' || _line || ': not a JSON object'
                    WHEN {repeated} THEN 'record ' || _line || ': a key appears twice in the object '
                         || '(which value is meant is not known)' END AS _pre_message,
               {note} AS _pre_note,
               {cols}
        FROM (
            SELECT *, CASE WHEN is_object THEN json_extract_string({record}, {_json_paths(contract)}) END AS vals
            FROM (SELECT *, CASE WHEN is_object THEN json_keys({record}) END AS _keys
                  FROM (SELECT *, {object_test} AS is_object FROM {source}))
        )"""


def _drift_notes(con, contract: SourceContract, relation: str, record: str, result: StageResult) -> None:
    """Schema drift of JSON records: top-level keys the contract does not read, per file."""
    known = "[" + ", ".join(sql_literal(k) for k in json_top_level_keys(contract)) + "]"
    for path, keys in con.execute(
        f"""SELECT _file, list_sort(list_distinct(flatten(list(
                list_filter(json_keys({record}), lambda k: NOT list_contains({known}::VARCHAR[], k))))))
            FROM {relation} WHERE coalesce(CASE WHEN json_valid({record}) THEN json_type({record}) = 'OBJECT' END, FALSE)
            GROUP BY _file"""
    ).fetchall():
        if keys:
            result.note(path, f"schema drift: {len(keys)} key(s) not in the contract, ignored: "
                              + ", ".join(header_label(k) for k in keys[:10]))


def _jsonl_prescan(path: Path) -> tuple[bool, bool]:
    """(has a lone CR, has any content) of a JSON Lines file, by byte counts."""
    lone_cr, content = False, False
    with open(path, "rb") as fh:
        tail = b""
        while chunk := fh.read(PRESCAN_CHUNK_BYTES):
            data = tail + chunk
            body = data[:-1] if data.endswith(b"\r") else data
            if body.count(b"\r") != body.count(b"\r\n"):
                lone_cr = True
            if not content and chunk.strip(b" \t\r\n\xef\xbb\xbf"):
                content = True
            tail = data[-1:] if data.endswith(b"\r") else b""
        if tail:
            lone_cr = True
    return lone_cr, content


def stage_jsonl(con, contract: SourceContract, files: list[LandingFile], table: str) -> StageResult:
    result = StageResult(table)
    create_staging_table(con, contract, table)
    # JSON Lines has no header: a day without responses is legitimately a 0-byte file with zero
    # records (unlike a CSV, whose header must be there, or a JSON array, which needs "[]").
    fast, careful = [], []
    for f in files:
        if f.bytes == 0:
            result.empty.add(f.rel_path)
            continue
        try:
            lone_cr, content = _jsonl_prescan(f.path)
        except OSError as exc:
            result.failures[f.rel_path] = f"{f.rel_path}: cannot be read: {describe(exc)}"
            continue
        if not content:
            result.empty.add(f.rel_path)
        (careful if lone_cr else fast).append(f)

    def lines_from_text(batch: list[LandingFile]) -> None:
        paths = _register_files(con, batch, {})
        path_list = "[" + ", ".join(sql_literal(p) for p in paths) + "]"
        con.execute(f"""CREATE OR REPLACE TEMP TABLE _jsonl_raw AS
            SELECT m.rel_path AS _file, l._line, m.partition AS _partition,
                   ltrim(rtrim(l.line, chr(13)), chr(65279)) AS line, l._n
            FROM (
                SELECT filename, unnest(range(1, len(ls) + 1)) AS _line, unnest(ls) AS line, len(ls) AS _n
                FROM (SELECT filename, string_split(content, chr(10)) AS ls FROM read_text({path_list}))
            ) l JOIN _stage_files m ON m.read_path = l.filename""")

    def run(batch: list[LandingFile], from_python: bool = False) -> None:
        if not from_python:
            lines_from_text(batch)
        lines = """(SELECT * FROM _jsonl_raw WHERE trim(line, ' ' || chr(9) || chr(13) || chr(65279)) <> '')"""
        # A raw line break inside a string splits one record over two lines, neither of which is
        # JSON; joined with the break escaped (\\n) they are. Only then are they joined. Only the
        # (rare) broken lines take part in the self-join, so clean files pay one json_valid per line.
        is_object = "coalesce(CASE WHEN json_valid({x}) THEN json_type({x}) = 'OBJECT' END, FALSE)"
        con.execute(f"CREATE OR REPLACE TEMP TABLE _jsonl_lines AS SELECT *, {is_object.format(x='line')} AS ok "
                    f"FROM {lines}")
        joined_ok = is_object.format(x="a.line || '\\n' || b.line")
        con.execute(f"""CREATE OR REPLACE TEMP TABLE _jsonl_joined AS
            SELECT a._file, a._line, a._partition, a.line || '\\n' || b.line AS line,
                   'record ' || a._line || ': a line break inside a string (lines ' || a._line || '-'
                   || b._line || ') joined as \\n' AS note
            FROM _jsonl_lines a JOIN _jsonl_lines b
              ON b._file = a._file AND b._line = a._line + 1 AND NOT a.ok AND NOT b.ok
            WHERE {joined_ok}""")
        records = """(
            SELECT _file, _line, _partition, line, NULL AS note, ok FROM _jsonl_lines l
            WHERE l.ok OR NOT EXISTS (SELECT 1 FROM _jsonl_joined j
                                      WHERE j._file = l._file AND l._line IN (j._line, j._line + 1))
            UNION ALL
            SELECT _file, _line, _partition, line, note, TRUE AS ok FROM _jsonl_joined
        )"""
        con.execute(f"INSERT INTO {table} BY NAME {_json_record_select(contract, records, 'line', 'note', 'ok')}")
        _drift_notes(con, contract, "_jsonl_lines", "line", result)
        # blank lines inside the file (the empty string after the last line break is no line)
        blank = con.execute("""SELECT _file, count(*) FROM _jsonl_raw
                               WHERE _line < _n AND strlen(line) < 64
                                 AND trim(line, ' ' || chr(9) || chr(13) || chr(65279)) = ''
                               GROUP BY _file""").fetchall()
        for path, n in blank:
            if n:
                result.note(path, f"{n} blank line(s): not records")
        for name in ("_jsonl_lines", "_jsonl_joined", "_jsonl_raw"):
            con.execute(f"DROP TABLE IF EXISTS {name}")

    for batch in batches(fast):
        _isolate(batch, run, result.failures, "UTF-8 JSON Lines")
    # Files DuckDB cannot read as text (invalid UTF-8) and files with lone CRs: line by line.
    retry = [f for f in fast if f.rel_path in result.failures]
    for f in careful + retry:
        result.failures.pop(f.rel_path, None)
        try:
            _jsonl_careful(con, contract, f, table, result)
            run([f], from_python=True)
        except Exception as exc:  # noqa: BLE001 - any parse failure is the file's reason
            _reraise_known(exc, "the work file")
            _delete_staged(con, table, [f.rel_path])
            result.failures[f.rel_path] = f"{f.rel_path}: cannot be read as JSON Lines: {describe(exc)}"
    return result


def _jsonl_careful(con, contract: SourceContract, f: LandingFile, table: str, result: StageResult) -> None:
    """Split a JSON Lines file on LF, CRLF or lone CR and decode each line; an invalid line is
    quarantined (BAD_ENCODING) and the others go to ``_jsonl_raw`` for the common SQL."""
    con.execute("CREATE OR REPLACE TEMP TABLE _jsonl_raw (_file VARCHAR, _line BIGINT, _partition VARCHAR, "
                "line VARCHAR, _n BIGINT)")
    good, bad = [], []
    lone_cr = 0
    with open(f.path, "rb") as fh:
        for no, (raw, end) in enumerate(physical_lines(fh), start=1):
            lone_cr += end == b"\r"
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad.append((f.rel_path, no, f.partition, _line_text(raw, "utf-8"), "BAD_ENCODING",
                            f"record {no}: bytes that are not valid UTF-8 (byte {exc.start + 1} of the line)",
                            *([None] * len(contract.column_names))))
                continue
            good.append((f.rel_path, no, f.partition, text.lstrip("\ufeff")))
    last = max((g[1] for g in good), default=0) + 1
    insert_rows(con, "_jsonl_raw", [(*g, last) for g in good])
    insert_rows(con, table, bad)
    if lone_cr:
        result.note(f.rel_path, "lone CR line endings: read as line breaks")


def _json_error(path: Path, rel_path: str) -> str:
    """Why a JSON file is unreadable, with the position Python's parser reports (never its text)."""
    try:
        with open(path, "rb") as fh:
            text = fh.read().decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"{rel_path}: not valid UTF-8 (byte offset {exc.start})"
    if not text.strip():
        return f"{rel_path}: empty file (no JSON array)"
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        return (f"{rel_path}: invalid or truncated JSON at line {exc.lineno}, column {exc.colno} "
                f"(char {exc.pos} of {len(text)}): {exc.msg}")
    except RecursionError:
        return f"{rel_path}: JSON nested too deeply to read"
    return f"{rel_path}: expected a JSON array of tickets, found a JSON {type(doc).__name__}"


def stage_json_array(con, contract: SourceContract, files: list[LandingFile], table: str) -> StageResult:
    result = StageResult(table)
    create_staging_table(con, contract, table)
    readable = []
    for f in files:
        if f.bytes == 0:
            result.empty.add(f.rel_path)
            result.failures[f.rel_path] = f"{f.rel_path}: empty file (0 bytes)"
        else:
            readable.append(f)

    def run(batch: list[LandingFile]) -> None:
        paths = _register_files(con, batch, {})
        path_list = "[" + ", ".join(sql_literal(p) for p in paths) + "]"
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _json_docs AS
            SELECT m.rel_path, m.read_path, m.partition, t.content,
                   coalesce(CASE WHEN json_valid(t.content) THEN json_type(t.content) = 'ARRAY' END, FALSE) AS ok
            FROM read_text({path_list}) t JOIN _stage_files m ON m.read_path = t.filename"""
        )
        for rel_path, blank in con.execute("SELECT rel_path, trim(content, ' ' || chr(9) || chr(10) || chr(13) "
                                           "|| chr(65279)) IN ('', '[]') FROM _json_docs").fetchall():
            if blank:
                result.empty.add(rel_path)
        bad = con.execute("SELECT rel_path, read_path FROM _json_docs WHERE NOT ok ORDER BY rel_path").fetchall()
        for rel_path, read_path in bad:
            result.failures[rel_path] = _json_error(Path(read_path), rel_path)
        con.execute("""CREATE OR REPLACE TEMP TABLE _json_elements AS
            SELECT rel_path AS _file, _partition, unnest(range(1, len(es) + 1)) AS _line,
                   CAST(unnest(es) AS VARCHAR) AS element
            FROM (SELECT rel_path, partition AS _partition, json_extract(content, '$[*]') AS es
                  FROM _json_docs WHERE ok)""")
        con.execute(f"INSERT INTO {table} BY NAME {_json_record_select(contract, '_json_elements', 'element')}")
        _drift_notes(con, contract, "_json_elements", "element", result)
        con.execute("DROP TABLE _json_docs")
        con.execute("DROP TABLE _json_elements")

    for batch in batches(readable):
        _isolate(batch, run, result.failures, "UTF-8 JSON")
    return result
