"""Complaints: ``complaints/YYYY-MM-DD.json``, a JSON array of nested tickets, UTF-8.

One element per ticket *state*; a ticket reappears in a later day's file when its state changes,
with a newer ``updated_ts``. ``raw.complaints_history`` keeps every state; ``raw.complaints`` holds
the latest state per ``complaint_no`` by ``updated_ts`` (an older state arriving late never wins).

Landing shape of one element::

    {"complaint_no": "CPJL00000123", "received_ts": "2024-03-02 10:15:00", "channel": "HOTLINE",
     "branch_code": "JL", "policy_no": "PJL2024000123", "claim_no": "CLJL2024000045" | null,
     "category": "CLAIM_DELAY", "complainant": {"name": "张三", "phone": "13812345678"},
     "is_accepted": true, "is_duplicate": false, "is_withdrawn": false, "liability": "PENDING",
     "extension_level": 0, "status": "OPEN", "closed_ts": null, "resolution": null,
     "updated_ts": "2024-03-02 10:20:00",
     "actions": [{"ts": "2024-03-02 10:20:00", "action": "ACCEPTED", "handler_id": "H0012"}]}

In raw, ``complainant`` is flattened to ``complainant_name`` / ``complainant_phone`` and
``actions`` is kept as JSON text.
"""

from __future__ import annotations

from pathlib import Path

from dagster_project.lib.ingest.landing import LandingFile
from dagster_project.lib.ingest.readers import StageResult, stage_json_array
from dagster_project.lib.ingest.contract import (
    BRANCH_CODE_PATTERN, CLAIM_NO_PATTERN, COMPLAINT_NO_PATTERN, EVENT_PAST_DAYS, PHONE_PATTERN, POLICY_NO_PATTERN,
    Column, SourceContract,
)
from dagster_project.lib.reference import BRANCH_CODES

CHANNELS = ("HOTLINE", "REGULATOR_12378", "ONLINE", "WALK_IN", "LETTER")
CATEGORIES = ("CLAIM_DISPUTE", "CLAIM_DELAY", "ASSESSMENT_DISPUTE", "SALES", "SERVICE_ATTITUDE", "OTHER")
LIABILITIES = ("AT_FAULT", "PARTIAL", "NOT_AT_FAULT", "PENDING")
ACTIONS = ("RECEIVED", "ACCEPTED", "INVESTIGATING", "EXTENDED", "RESOLVED", "CLOSED", "WITHDRAWN", "REOPENED")

CONTRACT = SourceContract(
    source="complaints",
    folder="complaints",
    file_suffix=".json",
    partitioning="daily",
    file_format="json_array",
    encoding="utf-8",
    key=("complaint_no",),
    # The nested complainant object is flattened; actions stay JSON text.
    json_paths={"complainant_name": "$.complainant.name", "complainant_phone": "$.complainant.phone"},
    description="Complaint ticket states (one element per state change) from the complaint system.",
    columns=(
        Column("complaint_no", "VARCHAR", required=True, pattern=COMPLAINT_NO_PATTERN),
        Column("received_ts", "TIMESTAMP", required=True, no_future=True, past_days=EVENT_PAST_DAYS),
        Column("channel", "VARCHAR", required=True, codes=CHANNELS),
        Column("branch_code", "VARCHAR", required=True, codes=BRANCH_CODES, pattern=BRANCH_CODE_PATTERN),
        Column("policy_no", "VARCHAR", pattern=POLICY_NO_PATTERN),
        Column("claim_no", "VARCHAR", pattern=CLAIM_NO_PATTERN),
        Column("category", "VARCHAR", required=True, codes=CATEGORIES),
        Column("complainant_name", "VARCHAR", pii=True),
        Column("complainant_phone", "VARCHAR", pii=True, pattern=PHONE_PATTERN),
        Column("is_accepted", "BOOLEAN", required=True),
        Column("is_duplicate", "BOOLEAN", required=True),
        Column("is_withdrawn", "BOOLEAN", required=True),
        Column("liability", "VARCHAR", required=True, codes=LIABILITIES),
        Column("extension_level", "INTEGER", required=True, min_value=0, max_value=2),
        Column("status", "VARCHAR", required=True, codes=("OPEN", "CLOSED")),
        Column("closed_ts", "TIMESTAMP", no_future=True, past_days=EVENT_PAST_DAYS),
        Column("resolution", "VARCHAR", free_text=True),
        Column("updated_ts", "TIMESTAMP", required=True, no_future=True, past_days=EVENT_PAST_DAYS),
        Column("actions", "VARCHAR"),  # JSON text: [{"ts", "action", "handler_id"}]
    ),
    # A ticket closed before it was received would give a negative handling time: quarantined.
    row_checks=(
        ("{closed_ts} < {received_ts}", "CLOSED_BEFORE_RECEIVED",
         "'closed_ts ' || CAST({closed_ts} AS VARCHAR) || ' is before received_ts ' || CAST({received_ts} AS VARCHAR)"),
        ("{updated_ts} < {received_ts}", "UPDATED_BEFORE_RECEIVED",
         "'updated_ts ' || CAST({updated_ts} AS VARCHAR) || ' is before received_ts ' || CAST({received_ts} AS VARCHAR)"),
        ("{status} = 'OPEN' AND {closed_ts} IS NOT NULL", "OPEN_WITH_CLOSED_TS",
         "'an OPEN ticket has a closed_ts ' || CAST({closed_ts} AS VARCHAR)"),
    ),
)


def stage_files(con, files: list[LandingFile], table: str, workdir: Path) -> StageResult:
    """One element = one ticket state; a file that is not a complete JSON array fails."""
    return stage_json_array(con, CONTRACT, files, table)


def refresh_latest_sql(affected: str) -> str:
    """Recompute ``raw.complaints`` for the complaint numbers in the relation ``affected``:
    the state with the greatest ``updated_ts`` over all history wins (ties: the later file, then
    the later element), so an older state arriving late never overwrites a newer one."""
    return f"""
        DELETE FROM raw.complaints WHERE complaint_no IN (SELECT complaint_no FROM {affected});
        INSERT INTO raw.complaints
        SELECT * FROM raw.complaints_history
        WHERE complaint_no IN (SELECT complaint_no FROM {affected})
        QUALIFY row_number() OVER (
            PARTITION BY complaint_no ORDER BY updated_ts DESC, _partition DESC, _source_line DESC) = 1;
    """
