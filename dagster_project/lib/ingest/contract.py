"""The shape of a landing-file contract. Each source module declares its own ``CONTRACT``.

A contract names the raw columns (the names every layer downstream uses), their DuckDB types in
``raw.<table>``, which are required keys, which are PII, the code lists and regular expressions a
value must match, and how the landing file is found and partitioned.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Lineage columns on every raw row (and every quarantine row where they apply).
LINEAGE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("_source_file", "VARCHAR"),  # path relative to the landing folder, e.g. claims/2024-01-02.csv
    ("_source_line", "BIGINT"),  # 1-based data line (CSV), line (JSONL), element (JSON) or sheet row (xlsx)
    ("_partition", "VARCHAR"),  # YYYY-MM-DD (daily) or YYYY-MM-01 (monthly), from the file name
    ("_ingested_at", "TIMESTAMP"),
    ("_run_id", "VARCHAR"),
)

# Formats used in landing files.
TS_FORMAT = "%Y-%m-%d %H:%M:%S"  # local time (Asia/Shanghai), no offset
CALL_TS_FORMAT = "%Y/%m/%d %H:%M:%S"  # the Chinese CTI export writes slashes
DATE_FORMAT = "%Y-%m-%d"

POLICY_NO_PATTERN = r"^P[A-Z]{2}[0-9]{10}$"  # P + branch code + 10 digits, e.g. PJL2024000123
CLAIM_NO_PATTERN = r"^CL[A-Z]{2}[0-9]{10}$"
COMPLAINT_NO_PATTERN = r"^CP[A-Z]{2}[0-9]{8}$"
CUSTOMER_ID_PATTERN = r"^C[0-9]{9}$"
ID_CARD_PATTERN = r"^[0-9]{17}[0-9X]$"
PHONE_PATTERN = r"^1[3-9][0-9]{9}$"
BRANCH_CODE_PATTERN = r"^[A-Z]{2}$"

# Plausibility windows of dates relative to the file's day (``Column.past_days``/``future_days``).
EVENT_PAST_DAYS = 5 * 366  # an event reported in a daily file happened within the last five years
POLICY_PAST_DAYS = 20 * 366  # a policy changed today may have been issued long ago
POLICY_FUTURE_DAYS = 30 * 366  # an end date decades ahead is plausible (long-term policies), 9999 is not


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # DuckDB type in raw.<table>
    required: bool = False  # missing/empty -> quarantine (MISSING_KEY / MISSING_VALUE)
    pii: bool = False
    codes: tuple[str, ...] | None = None  # allowed values; anything else -> UNKNOWN_CODE
    pattern: str | None = None  # regular expression the text must match
    min_value: float | None = None
    max_value: float | None = None
    description: str = ""
    # An event time that cannot lie after the file's own day (its partition; +1 day of grace for
    # events crossing midnight, a month + 1 day for monthly files) -> FUTURE_DATE.
    no_future: bool = False
    # Plausibility of a DATE / TIMESTAMP relative to the file's day (its partition): a value more
    # than ``past_days`` before it or more than ``future_days`` after it is IMPLAUSIBLE_DATE
    # (0000-01-01, 9999-12-31, a year typed as 2204). None: no bound on that side.
    past_days: int | None = None
    future_days: int | None = None
    # Free text (a comment, a resolution, findings): may hold a phone number or a name typed by a
    # person, so, like a PII column, its value is never quoted in a message or shown in a preview.
    free_text: bool = False

    @property
    def sensitive(self) -> bool:
        """Never quote this column's value in a message, a log or a Dagster event."""
        return self.pii or self.free_text


@dataclass(frozen=True)
class SourceContract:
    source: str  # asset / raw table name, e.g. "claim_events"
    folder: str  # landing sub-folder, e.g. "claims"
    file_suffix: str  # ".csv", ".jsonl", ".json", ".xlsx"
    partitioning: str  # "daily" or "monthly"
    file_format: str  # "csv", "jsonl", "json_array", "xlsx"
    encoding: str  # "utf-8", "utf-8-sig" or "gbk"
    key: tuple[str, ...]  # unique within a file; a repeat in the same file is quarantined
    columns: tuple[Column, ...]
    description: str = ""
    header_map: dict[str, str] = field(default_factory=dict)  # landing header -> contract name
    timestamp_format: str = TS_FORMAT  # strptime format of TIMESTAMP columns in the landing file
    # JSON sources: contract column -> JSON path in one record (default "$.<column>").
    json_paths: dict[str, str] = field(default_factory=dict)
    # Checks across columns of one row: (condition, reason_code, message) where the condition and
    # message are SQL over ``{column}`` placeholders (the typed value of that contract column).
    # A row for which the condition is TRUE is quarantined with that reason.
    row_checks: tuple[tuple[str, str, str], ...] = ()
    # References to other raw tables: (column, raw table, column there). They are not a reason to
    # quarantine (the referenced row may arrive in a later file); ingest counts the rows whose
    # reference is not loaded yet and notes them in the ledger (see ``loader``).
    references: tuple[tuple[str, str, str], ...] = ()

    @property
    def raw_table(self) -> str:
        return f"raw.{self.source}"

    @property
    def quarantine_table(self) -> str:
        return f"raw.quarantine_{self.source}"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)


# Columns of every raw.quarantine_<source> table.
QUARANTINE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("_source_file", "VARCHAR"),
    ("_source_line", "BIGINT"),
    ("_partition", "VARCHAR"),
    ("raw_text", "VARCHAR"),  # the offending line / element as landed
    ("reason_code", "VARCHAR"),  # e.g. BAD_DATE, UNKNOWN_CODE, DUPLICATE_KEY
    ("reason", "VARCHAR"),  # human message naming the column and the value
    ("_ingested_at", "TIMESTAMP"),
    ("_run_id", "VARCHAR"),
)


# The registry of every source's contract, filled by ``lib/ingest/sources.py`` when it imports the
# source modules. The shared readers and the landing listing look other sources up here (a file of
# another source in the wrong folder; the source folders of the landing) instead of importing the
# registry, which imports the source modules, which import the readers.
_REGISTERED: dict[str, SourceContract] = {}


def register_contracts(contracts: dict[str, SourceContract]) -> None:
    _REGISTERED.clear()
    _REGISTERED.update(contracts)


def registered_contracts() -> dict[str, SourceContract]:
    """Every source's contract, by source name (``sources.py`` registers them)."""
    if not _REGISTERED:
        raise RuntimeError("no landing sources are registered: import dagster_project.lib.ingest.sources first")
    return _REGISTERED
