"""Policies: ``policies/YYYY-MM-DD.csv``, UTF-8, header; one row per policy issued or changed that day."""

from __future__ import annotations

from pathlib import Path

from dagster_project.lib.ingest.landing import LandingFile
from dagster_project.lib.ingest.readers import StageResult, stage_csv
from dagster_project.lib.ingest.contract import (
    BRANCH_CODE_PATTERN, CUSTOMER_ID_PATTERN, ID_CARD_PATTERN, PHONE_PATTERN, POLICY_FUTURE_DAYS, POLICY_NO_PATTERN,
    POLICY_PAST_DAYS, Column, SourceContract,
)
from dagster_project.lib.reference import BRANCH_CODES, BUSINESS_SOURCES, LINES_OF_BUSINESS

CONTRACT = SourceContract(
    source="policies",
    folder="policies",
    file_suffix=".csv",
    partitioning="daily",
    file_format="csv",
    encoding="utf-8",
    key=("policy_no",),
    description="Policies issued or changed each day, as the policy admin system exports them.",
    columns=(
        Column("policy_no", "VARCHAR", required=True, pattern=POLICY_NO_PATTERN),
        Column("customer_id", "VARCHAR", required=True, pattern=CUSTOMER_ID_PATTERN),
        Column("customer_name", "VARCHAR", pii=True),
        Column("id_card_no", "VARCHAR", pii=True, pattern=ID_CARD_PATTERN),
        Column("phone", "VARCHAR", pii=True, pattern=PHONE_PATTERN),
        Column("branch_code", "VARCHAR", required=True, codes=BRANCH_CODES, pattern=BRANCH_CODE_PATTERN),
        Column("line_of_business", "VARCHAR", required=True, codes=tuple(c for c, _, _ in LINES_OF_BUSINESS)),
        Column("business_source", "VARCHAR", required=True, codes=tuple(c for c, _, _ in BUSINESS_SOURCES)),
        Column("sum_insured", "DECIMAL(16,2)", required=True, min_value=0),
        Column("premium", "DECIMAL(14,2)", required=True, min_value=0, max_value=10_000_000),
        Column("vehicle_price", "DECIMAL(14,2)", min_value=0),  # motor only
        Column("issue_date", "DATE", required=True, no_future=True, past_days=POLICY_PAST_DAYS),
        Column("start_date", "DATE", required=True, past_days=POLICY_PAST_DAYS, future_days=366),
        Column("end_date", "DATE", required=True, past_days=POLICY_PAST_DAYS,
               future_days=POLICY_FUTURE_DAYS),
        Column("renewal_of", "VARCHAR", pattern=POLICY_NO_PATTERN),
        Column("status", "VARCHAR", required=True, codes=("ACTIVE", "CANCELLED")),
    ),
    row_checks=((
        "{end_date} < {start_date}",
        "ENDS_BEFORE_START",
        "'end_date ' || CAST({end_date} AS VARCHAR) || ' is before start_date ' || CAST({start_date} AS VARCHAR)",
    ),),
)


def stage_files(con, files: list[LandingFile], table: str, workdir: Path) -> StageResult:
    """All files of the batch through one DuckDB read_csv (see ``readers.stage_csv``)."""
    return stage_csv(con, CONTRACT, files, table)
