"""Mystery-shopping audits: ``audits/YYYY-MM.xlsx``, one sheet, a title row above the header
(contract names as headers); one audit per row. Monthly partitions."""

from __future__ import annotations

from dagster_project.ingest.contract import BRANCH_CODE_PATTERN, Column, SourceContract
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
        Column("audit_date", "DATE", required=True),
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
