"""DuckDB readers that turn landing files into the common VARCHAR staging shape.

Everything is read as text first (``validate`` converts and checks it), and many files of a source
are read by one statement. A file that cannot be read at all is *isolated*: when a batched
statement fails, the batch is retried file by file and only the unreadable file fails, with a
message that names it — the others still load.

CSV (``stage_csv``): ``read_csv([...], filename=true, store_rejects=true)`` with the header checked
in Python first (one line per file). Lines with the wrong number of fields (or invalid UTF-8) land
in DuckDB's reject table with their line number and text; they are staged as quarantine rows, so
they count as landed. ``_source_line`` is the 1-based data record number (the header is line 0);
a quoted field spanning lines counts as one record. ``raw_text`` of a rejected line is the line as
landed; parsed rows leave it NULL and the loader rebuilds it (contract fields re-joined with
commas, quoted where needed) only for the rows it quarantines, so clean rows never pay for it.

JSON Lines (``stage_jsonl``): ``read_text`` + ``string_split`` rather than ``read_json``, because a
line that is not JSON must become one quarantined record (reason BAD_JSON) with its line number,
not an error for the whole batch; the fields come out with ``json_extract_string`` in one pass.
Blank lines are not records. A line that is not JSON but becomes a JSON object when joined with
the next line (a raw line break typed inside a comment, which JSON does not allow) is joined —
the break kept as ``\n`` — and the record carries a note; a record broken over more lines stays
BAD_JSON.

Repairs of the file's framing that do not change any value are made and noted per file
(``StageResult.notes``): a byte-order mark where none is expected (or none where one is), CRLF
line endings, a trailing delimiter on every line (an unnamed empty last column: a value there
quarantines the row). A header line repeated inside the file (concatenated exports) is not a
record: it is quarantined as REPEATED_HEADER so the counts still reconcile.

JSON array (``stage_json_array``): one ``read_text`` for the batch; a file that is not a valid JSON
array (truncated, not an array) fails; each element is a record numbered from 1.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from dagster_project.lib.ingest.contract import SourceContract
from dagster_project.lib.ingest.landing import LandingFile
from dagster_project.lib.ingest.validate import quote_ident, sql_literal

HEADER_PROBE_BYTES = 1 << 16
# Upper bound of landing bytes read by one statement (keeps memory flat at large scales).
BATCH_BYTES = 256 << 20

CSV_REJECT_REASONS = {
    "MISSING COLUMNS": "WRONG_COLUMN_COUNT",
    "TOO MANY COLUMNS": "WRONG_COLUMN_COUNT",
    "INVALID ENCODING": "BAD_ENCODING",
    "UNQUOTED VALUE": "BAD_QUOTING",
    "LINE SIZE OVER MAXIMUM": "LINE_TOO_LONG",
}


class FileUnreadable(Exception):
    """A landing file that cannot be read at all; the message names the file and the problem."""


@dataclass
class StageResult:
    table: str
    failures: dict[str, str] = field(default_factory=dict)  # rel_path -> message
    notes: dict[str, list[str]] = field(default_factory=dict)  # rel_path -> file-level repairs

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


def _first_line_error(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


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


def _isolate(files: list[LandingFile], run_batch, failures: dict[str, str], what: str) -> None:
    """Run ``run_batch`` on all files; if the statement fails, retry one file at a time."""
    try:
        run_batch(files)
        return
    except duckdb.Error as exc:
        if len(files) == 1:
            failures[files[0].rel_path] = f"{files[0].rel_path}: cannot be read as {what}: {_first_line_error(exc)}"
            return
    for f in files:
        try:
            run_batch([f])
        except duckdb.Error as exc:
            failures[f.rel_path] = f"{f.rel_path}: cannot be read as {what}: {_first_line_error(exc)}"


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


def read_csv_header(path: Path, rel_path: str) -> list[str]:
    """The header fields of a UTF-8 CSV file (a BOM is dropped). Raises FileUnreadable."""
    with open(path, "rb") as fh:
        head = fh.read(HEADER_PROBE_BYTES)
    if not head.strip():
        raise FileUnreadable(f"{rel_path}: empty file (no header line)")
    end = head.find(b"\n")
    if end < 0 and len(head) == HEADER_PROBE_BYTES:
        raise FileUnreadable(f"{rel_path}: no line break in the first {HEADER_PROBE_BYTES} bytes")
    line = head if end < 0 else head[:end]
    try:
        text = line.decode("utf-8-sig").rstrip("\r")
    except UnicodeDecodeError as exc:
        raise FileUnreadable(
            f"{rel_path}: header is not valid UTF-8 (byte offset {exc.start}): {exc.reason}"
        ) from exc
    return next(csv.reader(io.StringIO(text)))


def other_source_of(contract: SourceContract, header: list[str]) -> str | None:
    """The source whose contract a header belongs to, if it is not ``contract``'s (a file of
    another source dropped into the wrong folder)."""
    from dagster_project.lib.ingest import CONTRACTS

    for other in CONTRACTS.values():
        if other.source == contract.source:
            continue
        names = {other.header_map.get(h.strip(), h.strip()) for h in header}
        if set(c.name for c in other.columns if c.required) <= names:
            return other.source
    return None


def map_header(contract: SourceContract, header: list[str], rel_path: str) -> list[str]:
    """Landing header -> contract names; fails on a missing or repeated contract column.
    A trailing empty header field (a delimiter at the end of the line) maps to ""."""
    names = [contract.header_map.get(h.strip(), h.strip()) for h in header]
    repeated = sorted({n for n in names if names.count(n) > 1 and n in contract.column_names})
    if repeated:
        raise FileUnreadable(f"{rel_path}: column(s) repeated in the header: {', '.join(repeated)}")
    missing = [c for c in contract.columns if c.name not in names]
    if missing:
        required = [c.name for c in missing if c.required]
        optional = [c.name for c in missing if not c.required]
        parts = []
        if required:
            parts.append("missing required column(s) " + ", ".join(required))
        if optional:
            parts.append("missing column(s) " + ", ".join(optional))
        landing = ", ".join(header[:20])
        other = other_source_of(contract, header)
        if other:
            from dagster_project.lib.ingest import CONTRACTS

            parts.insert(0, f"this is a {other} file (its header), in the {contract.folder}/ folder — "
                            f"move it to {CONTRACTS[other].folder}/")
        raise FileUnreadable(f"{rel_path}: {'; '.join(parts)} (header: {landing})")
    return names


def stage_csv(
    con: duckdb.DuckDBPyConnection,
    contract: SourceContract,
    files: list[LandingFile],
    table: str,
    *,
    read_paths: dict[str, Path] | None = None,
    failures: dict[str, str] | None = None,
) -> StageResult:
    """Stage CSV files (UTF-8; ``read_paths`` points at transcoded copies where needed)."""
    read_paths = read_paths or {}
    result = StageResult(table, dict(failures or {}))
    create_staging_table(con, contract, table)

    # Group readable files by their header: one read_csv per distinct header layout.
    groups: dict[tuple[str, ...], list[LandingFile]] = {}
    for f in files:
        if f.rel_path in result.failures:
            continue
        try:
            if f.bytes == 0:
                raise FileUnreadable(f"{f.rel_path}: empty file (0 bytes, no header line)")
            read_path = read_paths.get(f.rel_path, f.path)
            header = read_csv_header(read_path, f.rel_path)
            names = map_header(contract, header, f.rel_path)
        except FileUnreadable as exc:
            result.failures[f.rel_path] = str(exc)
            continue
        with open(f.path, "rb") as fh:
            for text in framing_notes(fh.read(HEADER_PROBE_BYTES), contract.encoding == "utf-8-sig"):
                result.note(f.rel_path, text)
        if names and names[-1] == "" and len(names) > len(contract.columns):
            result.note(f.rel_path, "trailing delimiter on every line: the empty last column is ignored")
        groups.setdefault(tuple(header), []).append(f)

    for header, group in groups.items():
        names = tuple(map_header(contract, list(header), group[0].rel_path))
        for batch in batches(group):
            _isolate(batch, lambda fs, names=names, header=header: _read_csv_batch(
                con, contract, fs, names, table, read_paths, header), result.failures, "CSV")
    return result


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
            SELECT s.file_path, e.line - 1 AS data_line,
                   first(CAST(e.error_type AS VARCHAR) ORDER BY e.column_idx) AS error_type,
                   first(e.error_message ORDER BY e.column_idx) AS error_message,
                   first(e.csv_line) AS csv_line
            FROM _csv_rejects e JOIN _csv_reject_scans s USING (scan_id, file_id)
            GROUP BY ALL
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
               {reason_case} AS _pre_reason,
               'line ' || r.data_line || ': ' || r.error_message AS _pre_message,
               NULL AS _pre_note, {', '.join(null_cols)}
        FROM rejected r JOIN _stage_files m ON m.read_path = r.file_path
        {"ORDER BY _file, _line" if has_rejects else ""}"""
    )


# --------------------------------------------------------------------------------------- JSON


def _json_paths(contract: SourceContract) -> str:
    paths = [contract.json_paths.get(c, "$." + c) for c in contract.column_names]
    return "[" + ", ".join(sql_literal(p) for p in paths) + "]"


def _json_record_select(contract: SourceContract, source: str, record: str, note: str = "NULL",
                        is_object: str | None = None) -> str:
    """Staging rows from ``source`` which has _file, _line, _partition and a JSON text ``record``;
    ``is_object`` names a column of ``source`` that already says whether the record is a JSON
    object (each test parses the text once more)."""
    object_test = is_object or (f"coalesce(CASE WHEN json_valid({record}) THEN json_type({record}) = 'OBJECT' END, "
                                "FALSE)")
    cols = ", ".join(f"vals[{i + 1}] AS {quote_ident(c)}" for i, c in enumerate(contract.column_names))
    return f"""
        SELECT _file, _line, _partition, {record} AS raw_text,
               CASE WHEN NOT is_object THEN 'BAD_JSON' END AS _pre_reason,
               CASE WHEN NOT is_object THEN 'record ' || _line || ': not a JSON object: '
                    || left({record}, 60) END AS _pre_message,
               {note} AS _pre_note,
               {cols}
        FROM (
            SELECT *, CASE WHEN is_object THEN json_extract_string({record}, {_json_paths(contract)}) END AS vals
            FROM (SELECT *, {object_test} AS is_object FROM {source})
        )"""


def stage_jsonl(con, contract: SourceContract, files: list[LandingFile], table: str) -> StageResult:
    result = StageResult(table)
    create_staging_table(con, contract, table)
    # JSON Lines has no header: a day without responses is legitimately a 0-byte file with zero
    # records (unlike a CSV, whose header must be there, or a JSON array, which needs "[]").
    readable = [f for f in files if f.bytes > 0]

    def run(batch: list[LandingFile]) -> None:
        paths = _register_files(con, batch, {})
        path_list = "[" + ", ".join(sql_literal(p) for p in paths) + "]"
        lines = f"""(
            SELECT m.rel_path AS _file, l._line, m.partition AS _partition,
                   ltrim(rtrim(l.line, chr(13)), chr(65279)) AS line
            FROM (
                SELECT filename, unnest(range(1, len(ls) + 1)) AS _line, unnest(ls) AS line
                FROM (SELECT filename, string_split(content, chr(10)) AS ls FROM read_text({path_list}))
            ) l JOIN _stage_files m ON m.read_path = l.filename
            WHERE trim(l.line, ' ' || chr(9) || chr(13) || chr(65279)) <> ''
        )"""
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
        con.execute("DROP TABLE _jsonl_lines")
        con.execute("DROP TABLE _jsonl_joined")

    for batch in batches(readable):
        _isolate(batch, run, result.failures, "UTF-8 JSON Lines")
    return result


def _json_error(path: Path, rel_path: str) -> str:
    """Why a JSON file is unreadable, with the position Python's parser reports."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return f"{rel_path}: not valid UTF-8 (byte offset {exc.start})"
    if not text.strip():
        return f"{rel_path}: empty file (no JSON array)"
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        return (f"{rel_path}: invalid or truncated JSON at line {exc.lineno}, column {exc.colno} "
                f"(char {exc.pos} of {len(text)}): {exc.msg}")
    return f"{rel_path}: expected a JSON array of tickets, found a JSON {type(doc).__name__}"


def stage_json_array(con, contract: SourceContract, files: list[LandingFile], table: str) -> StageResult:
    result = StageResult(table)
    create_staging_table(con, contract, table)
    readable = []
    for f in files:
        if f.bytes == 0:
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
        bad = con.execute("SELECT rel_path, read_path FROM _json_docs WHERE NOT ok ORDER BY rel_path").fetchall()
        for rel_path, read_path in bad:
            result.failures[rel_path] = _json_error(Path(read_path), rel_path)
        elements = """(
            SELECT rel_path AS _file, _partition, unnest(range(1, len(es) + 1)) AS _line,
                   CAST(unnest(es) AS VARCHAR) AS element
            FROM (SELECT rel_path, partition AS _partition, json_extract(content, '$[*]') AS es
                  FROM _json_docs WHERE ok)
        )"""
        con.execute(f"INSERT INTO {table} BY NAME {_json_record_select(contract, elements, 'element')}")
        con.execute("DROP TABLE _json_docs")

    for batch in batches(readable):
        _isolate(batch, run, result.failures, "UTF-8 JSON")
    return result
