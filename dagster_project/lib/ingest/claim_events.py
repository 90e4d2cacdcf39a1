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
from dagster_project.lib.ingest.contract import (
    CLAIM_NO_PATTERN, EVENT_PAST_DAYS, POLICY_NO_PATTERN, Column, SourceContract,
)

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
        Column("event_ts", "TIMESTAMP", required=True, no_future=True, past_days=EVENT_PAST_DAYS),
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


# Cross-row rules a raw gate checks (expectations/raw_claim_events.json), applied at ingest where
# the other row is knowable: the rows already in raw (outside the partitions this batch replaces)
# and the valid rows of the batch. Applied in this order, they keep raw free of a surveyor arrival
# or a payment before its claim's report, whatever order the files arrive in.
_LATER_EVENTS = "('SURVEYOR_ARRIVED', 'PAID')"
_KEPT_RAW = "_partition NOT IN (SELECT DISTINCT _partition FROM _checked)"


def cross_row_sql(checked: str = "_checked") -> list[str]:
    return [
        # 1. A report before the start of its (loaded) policy.
        f"""UPDATE {checked} AS c SET reason_code = 'CLAIM_BEFORE_POLICY_START',
                reason = 'event_ts ' || CAST(c.event_ts AS VARCHAR) || ' is before the start '
                         || CAST(p.start_date AS VARCHAR) || ' of policy ' || c.policy_no
            FROM (SELECT policy_no, min(start_date) AS start_date FROM raw.policies
                  WHERE policy_no IN (SELECT policy_no FROM {checked} WHERE reason_code IS NULL AND event_type = 'REPORTED')
                  GROUP BY policy_no) AS p
            WHERE c.reason_code IS NULL AND c.event_type = 'REPORTED' AND c.policy_no = p.policy_no
              AND CAST(c.event_ts AS DATE) < p.start_date""",
        # 2. A report later than an arrival or payment of the claim already loaded.
        f"""UPDATE {checked} AS c SET reason_code = 'REPORTED_AFTER_LATER_EVENT',
                reason = 'event_ts ' || CAST(c.event_ts AS VARCHAR) || ' is after the claim''s '
                         || e.first_type || ' at ' || CAST(e.first_ts AS VARCHAR) || ' (already loaded)'
            FROM (SELECT claim_no, min(event_ts) AS first_ts, arg_min(event_type, event_ts) AS first_type
                  FROM raw.claim_events
                  WHERE event_type IN {_LATER_EVENTS} AND {_KEPT_RAW}
                    AND claim_no IN (SELECT claim_no FROM {checked} WHERE reason_code IS NULL AND event_type = 'REPORTED')
                  GROUP BY claim_no) AS e
            WHERE c.reason_code IS NULL AND c.event_type = 'REPORTED' AND c.claim_no = e.claim_no
              AND e.first_ts < c.event_ts""",
        # 3. An arrival or payment before the claim's report (loaded, or valid in this batch).
        f"""UPDATE {checked} AS c SET reason_code = 'EVENT_BEFORE_REPORT',
                reason = c.event_type || ' at ' || CAST(c.event_ts AS VARCHAR) || ' is before the claim''s report at '
                         || CAST(r.reported_ts AS VARCHAR)
            FROM (SELECT claim_no, max(event_ts) AS reported_ts FROM (
                      SELECT claim_no, event_ts FROM raw.claim_events
                      WHERE event_type = 'REPORTED' AND {_KEPT_RAW}
                        AND claim_no IN (SELECT claim_no FROM {checked} WHERE reason_code IS NULL
                                         AND event_type IN {_LATER_EVENTS})
                      UNION ALL
                      SELECT claim_no, event_ts FROM {checked} WHERE reason_code IS NULL AND event_type = 'REPORTED')
                  GROUP BY claim_no) AS r
            WHERE c.reason_code IS NULL AND c.event_type IN {_LATER_EVENTS} AND c.claim_no = r.claim_no
              AND c.event_ts < r.reported_ts""",
    ]
