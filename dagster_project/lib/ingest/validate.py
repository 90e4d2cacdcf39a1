"""Contract validation as SQL: a VARCHAR staging relation in, typed rows and reasons out.

Every reader (CSV, JSON Lines, JSON array, xlsx) produces the same *staging* shape::

    _file VARCHAR, _line BIGINT, _partition VARCHAR, raw_text VARCHAR,
    _pre_reason VARCHAR, _pre_message VARCHAR, <every contract column as VARCHAR>

``_pre_reason`` is set when the reader already knows the record is broken (wrong column count,
a line that is not JSON); such a record is quarantined with that reason. Everything else is
checked here, column by column in contract order, and the *first* failing check names the
reason, so every quarantined row has exactly one reason code and one human message:

=================  ==============================================================
MISSING_KEY        a key column (``contract.key``) is empty
MISSING_VALUE      another required column is empty
BAD_NUMBER         not a number of the column's type (or too large for it)
BAD_DATE           not a date / timestamp in the contract's format
BAD_BOOLEAN        not ``true`` / ``false``
FUTURE_DATE        an event time after the file's own day (see ``Column.no_future``)
OUT_OF_RANGE       a number outside ``[min_value, max_value]``
UNKNOWN_CODE       a value outside the column's code list
BAD_FORMAT         text that does not match the column's pattern
NUL_BYTE           a value contains a NUL byte (0x00): a corrupted export, never text
TOO_MANY_DECIMALS  a decimal with more digits after the point than the contract's scale
IMPLAUSIBLE_DATE   a date outside the column's plausibility window around the file's day
<row check code>   a check across columns of the row (``contract.row_checks``), e.g.
                   CLOSED_BEFORE_RECEIVED
DUPLICATE_KEY      the key repeats an earlier valid row of the same file (first one wins)
=================  ==============================================================

**Normalization with a note.** A typed value that does not parse in the contract's format is
tried once more after unambiguous repairs — full-width digits and punctuation (０１２．－：／，)
to ASCII, a Chinese-style date (2024年1月2日) or another year-first date (2024/01/02,
2024.1.2, 20240102) to the contract's format, thousands
separators (12,345.60) removed from a number. A value that parses only after repair loads, and
the row's ``_notes`` says which column was repaired and how; the loader counts the notes per file
into the ledger. Anything ambiguous (03/04/2024: March or April?) is not guessed: BAD_DATE.

The functions here only build SQL text (pure, unit-tested); ``loader`` executes it.
"""

from __future__ import annotations

import re

from dagster_project.lib.ingest.contract import DATE_FORMAT, LINEAGE_COLUMNS, QUARANTINE_COLUMNS, Column, SourceContract
from dagster_project.lib.sql import quote_ident, sql_literal

STAGING_META_COLUMNS = ("_file", "_line", "_partition", "raw_text", "_pre_reason", "_pre_message", "_pre_note")

# The longest landed value quoted in a human message; raw_text keeps the whole record.
MESSAGE_VALUE_CHARS = 60

_DECIMAL = re.compile(r"^DECIMAL\(\s*\d+\s*,\s*\d+\s*\)$")


def value_expr(column: Column) -> str:
    """The landed text of a column, trimmed; an empty string is a missing value."""
    return f"NULLIF(TRIM({quote_ident(column.name)}), '')"


_INTEGER_KINDS = ("INTEGER", "BIGINT", "SMALLINT")


def decimal_scale(column: Column) -> int | None:
    """The scale (digits after the point) of a DECIMAL(p, s) column, None for other types."""
    m = re.match(r"^DECIMAL\(\s*\d+\s*,\s*(\d+)\s*\)$", column.type.upper())
    return int(m.group(1)) if m else None


def number_pattern(column: Column) -> str:
    """The only number texts a numeric column accepts: plain decimal digits, an optional minus,
    and for DECIMAL(p, s) at most s digits after the point — no hexadecimal (0x1F), no digit
    separators (1_000), no exponent, no fraction in an integer column (3.5 is never rounded)."""
    kind = column.type.upper()
    if kind in _INTEGER_KINDS:
        return "^-?[0-9]{1,18}$"
    scale = decimal_scale(column)
    if scale is not None:
        return "^-?[0-9]{1,36}$" if scale == 0 else f"^-?[0-9]{{1,36}}(\\.[0-9]{{1,{scale}}})?$"
    return "^-?[0-9]{1,36}(\\.[0-9]{1,36})?$"  # DOUBLE


def strict_number(column: Column, text: str) -> str:
    """SQL: ``text`` as the column's number if it is a plain decimal of the contract's precision."""
    return (f"CASE WHEN regexp_full_match({text}, {sql_literal(number_pattern(column))}) "
            f"THEN TRY_CAST({text} AS {column.type}) END")


def typed_expr(column: Column, value: str, timestamp_format: str) -> str:
    """SQL that converts the landed text ``value`` to the column's raw type, NULL if it can't."""
    kind = column.type.upper()
    if kind == "VARCHAR":
        return value
    if kind == "DATE":
        return f"CAST(TRY_STRPTIME({value}, {sql_literal(DATE_FORMAT)}) AS DATE)"
    if kind == "TIMESTAMP":
        return f"TRY_STRPTIME({value}, {sql_literal(timestamp_format)})"
    if kind == "BOOLEAN":
        # Strict: JSON true/false only; 'yes', '1' etc. are contract violations.
        return f"(CASE lower({value}) WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END)"
    if kind in _NUMERIC_KINDS or _DECIMAL.match(kind):
        return strict_number(column, value)
    raise ValueError(f"contract column {column.name}: unsupported raw type {column.type!r}")


# Full-width digits and punctuation (as typed with a Chinese input method) -> ASCII.
FULL_WIDTH = "０１２３４５６７８９．－：／　，＋"
HALF_WIDTH = "0123456789.-:/ ,+"
_NUMERIC_KINDS = ("INTEGER", "BIGINT", "SMALLINT", "DOUBLE")


def _year_first_date(text: str) -> str:
    """SQL: a year-first date prefix of ``text`` rewritten as YYYY-M-D (strptime accepts one-digit
    months and days): 2024年1月2日, 2024/01/02, 2024.1.2, 20240102. Day-first or month-first dates
    are left alone (ambiguous)."""
    out = f"regexp_replace({text}, '^([0-9]{{4}})年([0-9]{{1,2}})月([0-9]{{1,2}})日?', '\\1-\\2-\\3')"
    out = f"regexp_replace({out}, '^([0-9]{{4}})[/.]([0-9]{{1,2}})[/.]([0-9]{{1,2}})', '\\1-\\2-\\3')"
    return f"regexp_replace({out}, '^([0-9]{{4}})([0-9]{{2}})([0-9]{{2}})($| )', '\\1-\\2-\\3\\4')"


def lenient_typed_expr(column: Column, value: str) -> str | None:
    """SQL for the column's typed value after the unambiguous repairs of the module docstring, or
    None for a column that has none (VARCHAR text is never rewritten; booleans stay strict)."""
    kind = column.type.upper()
    ascii_text = f"translate({value}, {sql_literal(FULL_WIDTH)}, {sql_literal(HALF_WIDTH)})"
    if kind == "DATE":
        return f"CAST(TRY_STRPTIME({_year_first_date(ascii_text)}, '%Y-%m-%d') AS DATE)"
    if kind == "TIMESTAMP":
        # Still a full date and time: a timestamp without seconds or without a time is not guessed.
        return f"TRY_STRPTIME({_year_first_date(ascii_text)}, '%Y-%m-%d %H:%M:%S')"
    if kind in _NUMERIC_KINDS or _DECIMAL.match(kind):
        grouped = r"'^[-+]?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]+)?$'"
        number = f"CASE WHEN regexp_full_match({ascii_text}, {grouped}) THEN replace({ascii_text}, ',', '') " \
                 f"ELSE {ascii_text} END"
        return strict_number(column, f"({number})")
    return None


def normalization_note(column: Column, value: str) -> str:
    """SQL naming the repair that made ``value`` parse (used only on repaired values)."""
    kind = column.type.upper()
    kinds = [f"WHEN regexp_matches({value}, '[{FULL_WIDTH}]') THEN 'full-width digits'",
             f"WHEN contains({value}, '年') THEN 'Chinese-style date'"]
    if kind in ("DATE", "TIMESTAMP"):
        kinds.append("ELSE 'date format'")
    else:
        kinds.append("ELSE 'thousands separators'")
    return f"{sql_literal(column.name + ': ')} || CASE {' '.join(kinds)} END"


def parse_failure_code(column: Column) -> str:
    kind = column.type.upper()
    if kind in ("DATE", "TIMESTAMP"):
        return "BAD_DATE"
    if kind == "BOOLEAN":
        return "BAD_BOOLEAN"
    return "BAD_NUMBER"


def _expected_text(column: Column, timestamp_format: str) -> str:
    kind = column.type.upper()
    if kind == "DATE":
        return f"a date {DATE_FORMAT}"
    if kind == "TIMESTAMP":
        return f"a timestamp {timestamp_format}"
    if kind == "BOOLEAN":
        return "true or false"
    return f"a number of type {column.type}"


def _quoted_value(value: str, column: Column | None = None) -> str:
    """SQL text naming a landed value in a message: quoted if it is short printable ASCII without
    a run of 7+ digits (a bad code, a date, an amount); otherwise only its length. A value of a
    PII or free-text column is never shown (docs/ingest.md, "Messages")."""
    if column is not None and column.sensitive:
        return sql_literal(f"(value not shown: {'PII' if column.pii else 'free text'})")
    hidden = f"'(a value of ' || length({value}) || ' characters, not shown)'"
    return (f"CASE WHEN regexp_full_match({value}, '[ -~]{{1,{MESSAGE_VALUE_CHARS}}}') "
            f"AND NOT regexp_matches({value}, '[0-9]{{7}}') THEN '''' || {value} || '''' ELSE {hidden} END")


def not_after_expr(partitioning: str) -> str:
    """The latest plausible event time of a staging row: its partition's end plus one day."""
    if partitioning == "monthly":
        return "(CAST(_partition AS DATE) + INTERVAL 1 MONTH + INTERVAL 1 DAY)"
    return "(CAST(_partition AS DATE) + INTERVAL 2 DAY)"


def value_alias(column: Column) -> str:
    return quote_ident("_v_" + column.name)


def typed_alias(column: Column) -> str:
    return quote_ident("_t_" + column.name)


def column_checks(contract: SourceContract, column: Column) -> list[tuple[str, str, str]]:
    """(condition, reason_code, message) SQL triples for one column, in the order they apply.

    They refer to the column's trimmed text ``"_v_<name>"`` and typed value ``"_t_<name>"``,
    which ``validation_sql`` computes once per row."""
    name = column.name
    value = value_alias(column)
    typed = typed_alias(column)
    shown = _quoted_value(value, column)
    checks: list[tuple[str, str, str]] = []
    if column.required:
        code = "MISSING_KEY" if name in contract.key else "MISSING_VALUE"
        checks.append((f"{value} IS NULL", code, sql_literal(f"{name} is missing")))
    scale = decimal_scale(column)
    if scale is not None:
        ascii_text = f"translate({value}, {sql_literal(FULL_WIDTH)}, {sql_literal(HALF_WIDTH)})"
        checks.append((
            f"{typed} IS NULL AND regexp_full_match(replace({ascii_text}, ',', ''), '-?[0-9]+[.][0-9]+') "
            f"AND NOT regexp_full_match(replace({ascii_text}, ',', ''), '-?[0-9]+[.][0-9]{{1,{max(scale, 1)}}}')",
            "TOO_MANY_DECIMALS",
            f"{sql_literal(name + ': ')} || {shown} || "
            f"{sql_literal(f' has more than {scale} decimal place(s), the contract precision (not rounded)')}",
        ))
    if column.type.upper() != "VARCHAR":
        expected = _expected_text(column, contract.timestamp_format)
        checks.append((
            f"{value} IS NOT NULL AND {typed} IS NULL",
            parse_failure_code(column),
            f"{sql_literal(name + ': ')} || {shown} || {sql_literal(' is not ' + expected)}",
        ))
    if column.no_future:
        checks.append((
            f"{typed} >= _not_after",
            "FUTURE_DATE",
            f"{sql_literal(name + ': ')} || {shown} || ' is after the file''s day ' || _partition",
        ))
    if column.past_days is not None or column.future_days is not None:
        bounds = []
        if column.past_days is not None:
            bounds.append(f"CAST({typed} AS DATE) < CAST(_partition AS DATE) - INTERVAL {int(column.past_days)} DAY")
        if column.future_days is not None:
            bounds.append(f"CAST({typed} AS DATE) > CAST(_partition AS DATE) + INTERVAL {int(column.future_days)} DAY")
        window = (f"{column.past_days if column.past_days is not None else 'any'} day(s) before to "
                  f"{column.future_days if column.future_days is not None else 'any'} day(s) after the file's day")
        checks.append((
            " OR ".join(bounds),
            "IMPLAUSIBLE_DATE",
            f"{sql_literal(name + ': ')} || {shown} || {sql_literal(' is implausible: outside ' + window + ' ')} "
            "|| _partition",
        ))
    if column.min_value is not None or column.max_value is not None:
        bounds = []
        if column.min_value is not None:
            bounds.append(f"{typed} < {sql_literal(column.min_value)}")
        if column.max_value is not None:
            bounds.append(f"{typed} > {sql_literal(column.max_value)}")
        low = "-inf" if column.min_value is None else f"{column.min_value:g}"
        high = "inf" if column.max_value is None else f"{column.max_value:g}"
        checks.append((
            " OR ".join(bounds),
            "OUT_OF_RANGE",
            f"{sql_literal(name + ': ')} || {shown} || {sql_literal(f' is outside [{low}, {high}]')}",
        ))
    if column.codes:
        code_list = ", ".join(sql_literal(c) for c in column.codes)
        allowed = ", ".join(column.codes)
        if len(allowed) > 120:
            allowed = allowed[:117] + "..."
        checks.append((
            f"{value} NOT IN ({code_list})",
            "UNKNOWN_CODE",
            f"{sql_literal(name + ': ')} || {shown} || {sql_literal(' is not one of ' + allowed)}",
        ))
    elif column.pattern:
        checks.append((
            f"NOT regexp_full_match({value}, {sql_literal(column.pattern)})",
            "BAD_FORMAT",
            f"{sql_literal(name + ': ')} || {shown} || {sql_literal(' does not match ' + column.pattern)}",
        ))
    return checks


def strict_alias(column: Column) -> str:
    return quote_ident("_s_" + column.name)


def nul_byte_check(contract: SourceContract) -> tuple[str, str, str]:
    """One scan of the row's concatenated text for a NUL byte; the message names the column."""
    values = [value_alias(c) for c in contract.columns]
    which = " ".join(f"WHEN strpos({v}, chr(0)) > 0 THEN {sql_literal(c.name)}"
                     for v, c in zip(values, contract.columns))
    return (f"strpos(concat({', '.join(values)}), chr(0)) > 0", "NUL_BYTE",
            f"(CASE {which} END) || ' contains a NUL byte (0x00): a corrupted export, not text'")


def row_check_sql(contract: SourceContract) -> list[tuple[str, str, str]]:
    """``contract.row_checks`` with ``{column}`` placeholders bound to the typed values."""
    names = {c.name: typed_alias(c) for c in contract.columns}
    return [(cond.format(**names), code, message.format(**names)) for cond, code, message in contract.row_checks]


def validation_sql(contract: SourceContract, staging: str) -> str:
    """SELECT over ``staging`` giving the meta columns, every contract column typed,
    ``reason_code`` / ``reason`` (NULL for a valid row) — before the duplicate-key check — and
    ``_notes`` (the repairs made to a loaded row, NULL if none).

    Each value is trimmed and converted once (inner projections); the message CASE runs only on
    rows that already have a reason code, so clean rows pay for one pass of the checks."""
    checks = [nul_byte_check(contract)]
    checks += [check for column in contract.columns for check in column_checks(contract, column)]
    checks += row_check_sql(contract)
    whens_code = "\n            ".join(f"WHEN {cond} THEN {sql_literal(code)}" for cond, code, _ in checks)
    whens_msg = "\n                ".join(f"WHEN {cond} THEN {msg}" for cond, _, msg in checks)
    values = ",\n        ".join(f"{value_expr(c)} AS {value_alias(c)}" for c in contract.columns)
    strict = ",\n        ".join(
        f"{typed_expr(c, value_alias(c), contract.timestamp_format)} AS {strict_alias(c)}" for c in contract.columns
    )
    typed_parts = []
    note_parts = []
    for c in contract.columns:
        lenient = lenient_typed_expr(c, value_alias(c))
        if lenient is None:
            typed_parts.append(f"{strict_alias(c)} AS {typed_alias(c)}")
            continue
        typed_parts.append(f"coalesce({strict_alias(c)}, {lenient}) AS {typed_alias(c)}")
        note_parts.append(f"CASE WHEN {strict_alias(c)} IS NULL AND {typed_alias(c)} IS NOT NULL "
                          f"THEN {normalization_note(c, value_alias(c))} END")
    typed = ",\n        ".join(typed_parts)
    notes = "NULLIF(concat_ws('; ', " + ", ".join(note_parts + ["_pre_note"]) + "), '')"
    outputs = ",\n    ".join(
        f"CASE WHEN _pre_reason IS NULL THEN {typed_alias(c)} END AS {quote_ident(c.name)}" for c in contract.columns
    )
    return f"""SELECT _file, _line, _partition, raw_text,
    {outputs},
    reason_code,
    CASE WHEN _pre_reason IS NOT NULL THEN _pre_message
         WHEN reason_code IS NOT NULL THEN CASE
                {whens_msg}
            END
    END AS reason,
    CASE WHEN reason_code IS NULL THEN _notes END AS _notes
FROM (
    SELECT *,
        CASE WHEN _pre_reason IS NOT NULL THEN _pre_reason
            {whens_code}
        END AS reason_code,
        {notes} AS _notes
    FROM (
        SELECT *,
        {typed}
        FROM (
            SELECT *,
            {strict}
            FROM (
                SELECT _file, _line, _partition, raw_text, _pre_reason, _pre_message, _pre_note,
                    {not_after_expr(contract.partitioning)} AS _not_after,
            {values}
                FROM {staging}
            )
        )
    )
)"""


def duplicate_update_sql(contract: SourceContract, table: str) -> str:
    """Mark later occurrences of a key inside one file as DUPLICATE_KEY (the first valid row wins).

    A hash aggregate finds the (rare) repeated keys and only their rows are updated, so a clean
    batch costs one GROUP BY instead of a window over every row."""
    keys = [quote_ident(k) for k in contract.key]
    key_text = " || '/' || ".join(f"CAST(c.{k} AS VARCHAR)" for k in keys)
    key_names = "/".join(contract.key)
    join = " AND ".join(f"c.{k} = d.{k}" for k in keys)
    quote = "''''"  # SQL for a single quote character
    return f"""UPDATE {table} AS c
    SET reason_code = 'DUPLICATE_KEY',
        reason = {sql_literal(key_names + ': ')} || {quote} || {key_text} || {quote}
                 || ' repeats line ' || CAST(d.first_line AS VARCHAR) || ' of the same file'
    FROM (
        SELECT _file, {', '.join(keys)}, min(_line) AS first_line
        FROM {table} WHERE reason_code IS NULL
        GROUP BY _file, {', '.join(keys)} HAVING count(*) > 1
    ) AS d
    WHERE c.reason_code IS NULL AND c._file = d._file AND {join} AND c._line > d.first_line"""


def csv_record_expr(contract: SourceContract, alias: str) -> str:
    """The staged text fields of a row re-joined as one CSV record (contract order, quoted where
    needed): the raw text of a parsed CSV row, rebuilt only for the rows that are quarantined."""
    parts = []
    for name in contract.column_names:
        col = f"{alias}.{quote_ident(name)}"
        parts.append(
            f"CASE WHEN {col} IS NULL THEN '' "
            f"WHEN {col} LIKE '%,%' OR {col} LIKE '%\"%' OR {col} LIKE '%' || chr(10) || '%' "
            f"THEN '\"' || replace({col}, '\"', '\"\"') || '\"' ELSE {col} END"
        )
    return " || ',' || ".join(parts)


def raw_table_ddl(contract: SourceContract, table: str | None = None) -> str:
    cols = [f"{quote_ident(c.name)} {c.type}" for c in contract.columns]
    cols += [f"{quote_ident(n)} {t}" for n, t in LINEAGE_COLUMNS]
    return f"CREATE TABLE IF NOT EXISTS {table or contract.raw_table} (\n    " + ",\n    ".join(cols) + "\n)"


def quarantine_table_ddl(contract: SourceContract) -> str:
    cols = [f"{quote_ident(n)} {t}" for n, t in QUARANTINE_COLUMNS]
    return f"CREATE TABLE IF NOT EXISTS {contract.quarantine_table} (\n    " + ",\n    ".join(cols) + "\n)"
