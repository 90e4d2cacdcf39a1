"""A small hand-built work file with mart-like tables that satisfy every mart suite, so the gate
and publish can be tested without the generator, ingest and dbt. Defects are applied on top."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from dagster_project.lib.analysis import emerging_terms, key_drivers
from dagster_project.lib.analysis.tables import write_table

HASH = "sha256(k::varchar)"  # 64 lowercase hex characters, like the salted customer keys

BUILD_SQL = f"""
create schema raw; create schema staging; create schema intermediate; create schema marts;
create table raw.complaints as
  select 'CPJL' || lpad(i::varchar, 8, '0') as complaint_no, '张' || chr((19968 + i)::integer) || '明' as complainant_name,
         '1381234' || lpad(i::varchar, 4, '0') as complainant_phone
  from range(6) r(i);
create table staging.stg_complaints__complaints as
  select complaint_no, i % 3 <> 2 as is_accepted
  from (select complaint_no, row_number() over () - 1 as i from raw.complaints);
create table intermediate.int_claim_events__current as
  select 'CLJL' || lpad((i // 2)::varchar, 10, '0') as claim_no,
         case when i % 2 = 0 then 'REPORTED' else 'PAID' end as event_type
  from range(20) r(i);
create table staging.stg_audits__audits as select i as audit_id from range(4) r(i);

create table marts.mart_stage_satisfaction as
  select b as branch_code, 'SURVEY' as stage, date '2024-01-01' as month, 10 as responses, 8 as satisfied,
         0.8::double as csat, 4.1 as mean_score, 0.49 as wilson_low, 0.94 as wilson_high, 0.79 as csat_shrunk,
         0.8 as company_csat, 0.0 as gap_vs_company, true as low_sample, false as significantly_below
  from (values ('JL'), ('LN')) v(b);
create table marts.mart_claim_cycle as
  select b as branch_code, date '2024-01-01' as month, 5 as claims_reported, 4 as claims_closed, 0.8 as closure_rate,
         30.0 as arrival_minutes_p50, 60.0 as arrival_minutes_p90, 24.0 as report_to_assessment_hours_p50,
         5.0 as report_to_payment_days_p50, 12.0 as report_to_payment_days_p90, 3.0 as agreement_to_payment_days_p50,
         0.9 as paid_within_10d_share, 0.95 as decided_within_30d_share, 0.9 as acceptance_rate, 0.05 as reopen_rate
  from (values ('JL'), ('LN')) v(b);
create table marts.mart_complaints as
  select 'JL' as branch_code, date '2024-01-01' as month, 6 as received, 4 as accepted, 2 as valid,
         2 / 6 as valid_rate, 1.5 as per_10k_policies, 3.0 as per_100m_premium, 7.0 as handling_days_p50,
         14.0 as handling_days_p90, 0.9 as within_deadline_share, 2 as open_backlog, 1 as overdue,
         1 as regulator_routed, 2 as claim_dispute, 4000 as policies_in_force, 2000000.00 as written_premium;
create table marts.fct_complaint_winback as
  select complaint_no, 'JL' as branch_code, 4 as post_handling_score, true as satisfied_after
  from raw.complaints;
create table marts.mart_winback as
  select 'JL' as branch_code, date '2024-01-01' as month, 4.0 as post_handling_score, 3 as satisfied_after,
         5 as due_for_renewal, 3 as renewed, 0.6 as winback_rate, 0.7 as baseline_renewal_rate, 0.86 as renewal_lift;
create table marts.mart_call_center_daily as
  select date '2024-01-01' + i::integer as day, 'INQUIRY' as queue, 100 as offered, 90 as answered, 10 as abandoned,
         0.9 as manual_answer_rate, 0.8 as service_level_20s, 0.1 as abandon_rate, 12.0 as asa_seconds,
         240.0 as aht_seconds, 1.0 as inbound_share, 0.0 as followup_reach_rate
  from range(2) r(i);
create table marts.mart_call_center_monthly as
  select 'JL' as branch_code, date '2024-01-01' as month, 200 as offered, 180 as answered, 20 as abandoned,
         0.9 as manual_answer_rate, 0.8 as service_level_20s, 0.1 as abandon_rate, 12.0 as asa_seconds,
         240.0 as aht_seconds, 0.8 as inbound_share, 0.7 as followup_reach_rate, 1.2 as followups_per_closed_claim;
create table marts.mart_mystery_shopping as
  select b as branch_code, date '2024-01-01' as quarter, 2 as audits, 0.5 as pass_rate, 55.0 as arrival_minutes_avg,
         0.5 as arrival_within_sla_share, 80.0 as assessment_score_avg, 85.0 as payment_convenience_avg
  from (values ('JL'), ('LN')) v(b);
create table marts.dim_customer_segment as
  select {HASH} as customer_key, 'JL' as branch_code, 'MOTOR' as primary_line, 'AGENT' as business_source,
         2 as policies, 1 as lines_held, 3000.0 as written_premium, 2800.0 as earned_premium,
         case when k < 2 then 3 else 0 end as claim_count, 100.0 as incurred_loss,
         case when k < 2 then 1.5 else 0.0 end as loss_ratio, 1 as claim_free_years,
         case when k < 2 then 'HIGH_RISK' else 'QUALITY' end as segment, 'LOW' as value_tier
  from range(5) r(k);
create table marts.mart_segment_summary as
  select 'JL' as branch_code, 'MOTOR' as line, s as segment, 'LOW' as value_tier, 2 as customers
  from (values ('HIGH_RISK'), ('QUALITY')) v(s);
create table marts.mart_underwriting_watchlist as
  select {HASH} as customer_key, 'PJL2024000001' as policy_no, 'HIGH_RISK' as segment, 'loss ratio 150%' as reason, 'REVIEW_TERMS' as recommended_action
  from range(2) r(k);
create table marts.mart_high_risk_profile as
  select 'line' as attribute, v as value, 0.4 as high_risk_share, 1.6 as lift from (values ('MOTOR'), ('HOME')) t(v);
create table marts.mart_branch_scorecard as
  select b as branch_code, date '2024-01-01' as month, 0.8 as csat, 1 as csat_rank from (values ('JL'), ('LN')) v(b);

create table intermediate.int_surveys__attributed as
  select * from (values ('R1', 2), ('R2', 5)) v(response_id, score);
create table intermediate.int_complaints__lifecycle as
  select complaint_no, complaint_no = 'CPJL00000000' as is_accepted, false as is_duplicate from raw.complaints;
create table intermediate.int_calls__current as
  select * from (values ('C1', 'FOLLOW_UP', 'OUTBOUND', true, true, 'PJL2024000001', null),
                        ('C2', 'INQUIRY', 'INBOUND', true, false, 'PJL2024000001', null))
      v(call_id, call_type, direction, is_answered, is_completed, policy_no, claim_no);
create table marts.fct_followup_case as
  select * from (values
      ('DETRACTOR:R1', 'DETRACTOR', 'JL', 'R1', null, 2, 'PJL2024000001', null::varchar, timestamp '2024-01-05 10:00:00',
       timestamp '2024-01-08 10:00:00', 'C1', timestamp '2024-01-05 13:00:00', false, 0, 3.0),
      ('COMPLAINT:CPJL00000000', 'COMPLAINT', 'JL', null, 'CPJL00000000', null, 'PJL2024000001', null,
       timestamp '2024-01-10 10:00:00', timestamp '2024-01-12 10:00:00', null, timestamp '2024-01-20 10:00:00', true, 2, 240.0))
      v(case_key, reason, branch_code, response_id, complaint_no, score, policy_no, claim_no, opened_ts, due_ts,
        followup_call_id, closed_ts, is_overdue, escalation_level, hours_to_followup);
create table marts.mart_followup as
  select 'JL' as branch_code, date '2024-01-01' as month, 2 as cases_opened, 1 as closed_within_deadline, 1 as overdue,
         2 as cases_decided, 0.5 as overdue_share, 0 as open_at_month_end, 0 as overdue_at_month_end,
         121.5 as hours_to_followup_p50, 216.3 as hours_to_followup_p90, 1.0 as followed_up_next_csat,
         0.0 as not_followed_up_next_csat, 1.0 as followed_up_renewal_rate, 0.0 as not_followed_up_renewal_rate;
create table marts.mart_contact_resolution as
  select 'JL' as branch_code, date '2024-01-01' as month, 'INQUIRY' as queue, 'INQUIRY' as call_type, 1 as inbound_calls,
         1 as contacts, 0 as repeat_contacts, 0.0 as repeat_rate, 1.0 as first_contact_resolution,
         0.5 as repeat_caller_csat, 0.9 as first_time_caller_csat;
create table marts.mart_complaint_regulatory as
  select 'JL' as branch_code, t as period_type, date '2024-01-01' as period_start,
         case t when 'MONTH' then date '2024-01-31' else date '2024-03-31' end as period_end,
         6 as received, 1 as regulator_routed, 4000 as policies_in_force, 2000000.00 as written_premium,
         15.0 as per_10k_policies, 300.0 as per_100m_premium, 1.0 as complaint_share, 1.0 as premium_share,
         1.0 as complaint_index, 1.0 as regulator_within_deadline_share, 0 as escalated, 0.0 as escalation_rate,
         0.0 as escalated_share_of_regulator_routed
  from (values ('MONTH'), ('QUARTER')) v(t);
"""

# Defects that pass ingest and dbt's row rules but break a rule across rows or tables, which the
# Great Expectations mart suites own (a rate above 1, a null or duplicated key are the marts'
# contract constraints and dbt tests: DuckDB refuses such a row when dbt builds the model, see
# tests/transform/test_dbt_project.py). Each: (SQL applied to the work file, the suite that must fail).
DEFECTS = {
    "complaints_reconciliation_mismatch": (
        "update marts.mart_complaints set received = received + 1",
        "marts_mart_complaints"),
    "phone_number_leaks_into_a_mart": (
        "update marts.mart_underwriting_watchlist set reason = 'call 13912345678' where customer_key = (select min(customer_key) from marts.mart_underwriting_watchlist)",
        "marts_mart_underwriting_watchlist"),
    "complainant_name_leaks_into_a_mart": (
        "update marts.fct_complaint_winback set branch_code = (select min(complainant_name) from raw.complaints) where complaint_no = 'CPJL00000000'",
        "marts_fct_complaint_winback"),
    "claims_reconciliation_mismatch": (
        "delete from intermediate.int_claim_events__current where claim_no = 'CLJL0000000000'",
        "marts_mart_claim_cycle"),
}


def build_work_db(path: Path) -> Path:
    """The hand-built work file at ``path`` (a warehouse's ``work.duckdb``), with the manifest a dbt
    build would have left next to it (``write_manifest``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        con.execute(BUILD_SQL)
        # the tables the analysis assets write, by their own writers (typed, with comments)
        write_table(con, key_drivers.OUTPUT_TABLE, key_drivers.estimate(_driver_observations()), key_drivers.COLUMNS,
                    key_drivers.DESCRIPTION)
        write_table(con, emerging_terms.OUTPUT_TABLE, pd.DataFrame(columns=[c for c, _, _ in emerging_terms.COLUMNS]),
                    emerging_terms.COLUMNS, emerging_terms.DESCRIPTION)
    finally:
        con.close()
    write_manifest(path)
    return path


def _driver_observations() -> pd.DataFrame:
    """Key-driver observations of a few policies: too few to estimate, so every row says so."""
    rows = [("RENEWAL", f"P{i:04d}", "MOTOR", float(i % 2), *([1, i % 3 > 0] * 4)) for i in range(30)]
    return pd.DataFrame(rows, columns=["outcome", "unit_id", "line_of_business", "y",
                                       *(f"{k}_{s}" for s in ("report", "survey", "assessment", "payment")
                                         for k in ("answered", "satisfied"))])


def apply_sql(path: Path, sql: str) -> None:
    con = duckdb.connect(str(path))
    try:
        con.execute(sql)
    finally:
        con.close()


def write_manifest(work_db, descriptions: dict | None = None) -> Path:
    """A dbt manifest for the hand-built marts, where a dbt build on the warehouse leaves its own
    (``dbt_project.warehouse_manifest``): each mart a published model with its columns, so the
    catalog's allow-list is exactly these tables. ``work_db``: the work file (or Settings);
    ``descriptions``: {table: (text, {column: text})}."""
    import json

    work_db = Path(getattr(work_db, "work_db", work_db))
    descriptions = descriptions or {}
    con = duckdb.connect(str(work_db), read_only=True)
    try:
        columns: dict[str, list[str]] = {}
        for table, column in con.execute("select table_name, column_name from information_schema.columns "
                                         "where table_schema = 'marts' order by table_name, ordinal_position").fetchall():
            columns.setdefault(table, []).append(column)
    finally:
        con.close()
    nodes = {}
    for table, names in columns.items():
        text, column_texts = descriptions.get(table, ("", {}))
        nodes[f"model.cs_warehouse.{table}"] = {
            "resource_type": "model", "package_name": "cs_warehouse", "name": table, "schema": "marts",
            "fqn": ["cs_warehouse", "marts", table], "description": text,
            "config": {"materialized": "table", "meta": {"published": True}},
            "columns": {c: {"name": c, "description": column_texts.get(c, "")} for c in names}}
    path = work_db.parent / "dbt_target" / "manifest.json"  # dbt_project.dbt_target_dir of the warehouse
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"nodes": nodes, "macros": {}}), encoding="utf-8")
    return path


def gate_and_publish(settings):
    """The mart gates and the publish step as the jobs run them: the ``monthly_snapshot`` job's
    Great Expectations mart checks and ``published/marts``, in one run on an in-memory instance
    (this warehouse has no dbt build). Returns the run's result."""
    import dagster as dg

    from dagster_project.definitions import build_definitions
    from dagster_project.defs.publish.assets import PUBLISHED_KEY

    job = build_definitions(settings).resolve_job_def("monthly_snapshot")
    mart_checks = {k for k in job.asset_layer.asset_graph.asset_check_keys if k.name.startswith("gx_marts_")}
    subset = job.get_subset(asset_selection={PUBLISHED_KEY}, asset_check_selection=mart_checks)
    return subset.execute_in_process(instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
