"""Claim events: ``claims/YYYY-MM-DD.csv``, UTF-8 with BOM, header; one row per claim milestone.

Claim attributes (injury, location_type, report_channel) are repeated on every event of a claim.
``amount`` is the estimate on REPORTED, the assessed amount on ASSESSED, the agreed amount on
AGREED and the paid amount on PAID; empty otherwise. ``surveyor_id`` is set on
SURVEYOR_DISPATCHED / SURVEYOR_ARRIVED, ``payment_method`` on PAID.
"""

from __future__ import annotations

from pathlib import Path

from dagster_project.lib.ingest.landing import LandingFile
from dagster_project.lib.ingest.readers import StageResult, stage_csv
from dagster_project.lib.ingest.contract import CLAIM_NO_PATTERN, POLICY_NO_PATTERN, Column, SourceContract

EVENT_TYPES = (
    "REPORTED", "SURVEYOR_DISPATCHED", "SURVEYOR_ARRIVED", "DOCS_COMPLETE", "ASSESSED", "AGREED",
    "PAID", "REJECTED", "CANCELLED", "CLOSED", "REOPENED",
)

CONTRACT = SourceContract(
    source="claim_events",
    folder="claims",
    file_suffix=".csv",
    partitioning="daily",
    file_format="csv",
    encoding="utf-8-sig",
    key=("event_id",),
    description="Claim milestone events (report, dispatch, arrival, assessment, payment ...) from the claims system.",
    columns=(
        Column("event_id", "VARCHAR", required=True, pattern=r"^E[0-9]{12}$"),
        Column("claim_no", "VARCHAR", required=True, pattern=CLAIM_NO_PATTERN),
        Column("policy_no", "VARCHAR", required=True, pattern=POLICY_NO_PATTERN),
        Column("event_type", "VARCHAR", required=True, codes=EVENT_TYPES),
        Column("event_ts", "TIMESTAMP", required=True, no_future=True),
        Column("amount", "DECIMAL(14,2)", min_value=0, max_value=50_000_000),
        Column("surveyor_id", "VARCHAR", pattern=r"^S[0-9]{5}$"),
        Column("payment_method", "VARCHAR", codes=("BANK_TRANSFER", "ALIPAY", "WECHAT_PAY", "CHEQUE")),
        Column("injury", "VARCHAR", required=True, codes=("Y", "N")),
        Column("location_type", "VARCHAR", required=True, codes=("URBAN", "RURAL")),
        Column("report_channel", "VARCHAR", required=True, codes=("PHONE", "APP", "WECHAT", "AGENT")),
    ),
    # An event for a policy not loaded (yet) still loads: the policy may come in a later file.
    references=(("policy_no", "raw.policies", "policy_no"),),
)


def stage_files(con, files: list[LandingFile], table: str, workdir: Path) -> StageResult:
    """All files of the batch through one DuckDB read_csv (see ``readers.stage_csv``)."""
    return stage_csv(con, CONTRACT, files, table)
