"""Surveys: ``surveys/YYYY-MM-DD.jsonl``, JSON Lines, UTF-8; one response per line.

A claim-stage survey carries ``claim_no`` (and ``policy_no``); a COMPLAINT-stage survey carries
``complaint_no``. ``comment`` is Chinese free text and may contain phone numbers (scrubbed in
staging before anything reaches a mart).
"""

from __future__ import annotations

from pathlib import Path

from dagster_project.lib.ingest.landing import LandingFile
from dagster_project.lib.ingest.readers import StageResult, stage_jsonl
from dagster_project.lib.ingest.contract import (
    CLAIM_NO_PATTERN, COMPLAINT_NO_PATTERN, EVENT_PAST_DAYS, POLICY_NO_PATTERN, Column, SourceContract,
)
from dagster_project.lib.reference import STAGE_CODES

CONTRACT = SourceContract(
    source="surveys",
    folder="surveys",
    file_suffix=".jsonl",
    partitioning="daily",
    file_format="jsonl",
    encoding="utf-8",
    key=("response_id",),
    description="Satisfaction survey responses per claim stage and complaint (phone, SMS, WeChat).",
    columns=(
        Column("response_id", "VARCHAR", required=True, pattern=r"^R[0-9]{12}$"),
        Column("channel", "VARCHAR", required=True, codes=("PHONE", "SMS", "WECHAT")),
        Column("sent_ts", "TIMESTAMP", required=True, no_future=True, past_days=EVENT_PAST_DAYS),
        Column("responded_ts", "TIMESTAMP", required=True, no_future=True, past_days=EVENT_PAST_DAYS),
        Column("policy_no", "VARCHAR", pattern=POLICY_NO_PATTERN),
        Column("claim_no", "VARCHAR", pattern=CLAIM_NO_PATTERN),
        Column("complaint_no", "VARCHAR", pattern=COMPLAINT_NO_PATTERN),
        Column("stage", "VARCHAR", required=True, codes=STAGE_CODES),
        Column("score", "INTEGER", required=True, min_value=1, max_value=5),
        Column("nps", "INTEGER", min_value=0, max_value=10),
        Column("comment", "VARCHAR", free_text=True),
        Column("agent_id", "VARCHAR", pattern=r"^A[0-9]{4}$"),
    ),
    row_checks=(
        ("{responded_ts} < {sent_ts}", "RESPONDED_BEFORE_SENT",
         "'responded_ts ' || CAST({responded_ts} AS VARCHAR) || ' is before sent_ts ' || CAST({sent_ts} AS VARCHAR)"),
        ("{stage} IN ('REPORT', 'SURVEY', 'ASSESSMENT', 'PAYMENT') AND {claim_no} IS NULL", "MISSING_CLAIM_NO",
         "'a ' || {stage} || '-stage survey has no claim_no'"),
        ("{stage} = 'COMPLAINT' AND {complaint_no} IS NULL", "MISSING_COMPLAINT_NO",
         "'a COMPLAINT-stage survey has no complaint_no'"),
    ),
    # A response for a claim not loaded (yet) still loads: the claim may come in a later file.
    references=(("claim_no", "raw.claim_events", "claim_no"),),
)


def stage_files(con, files: list[LandingFile], table: str, workdir: Path) -> StageResult:
    """One line = one response; a line that is not a JSON object is quarantined as BAD_JSON."""
    return stage_jsonl(con, CONTRACT, files, table)
