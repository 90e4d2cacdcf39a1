"""Follow-up cases, first-contact resolution and the regulator's complaint indicators.

On the tiny session build: the marts equal an independent pandas recomputation from the raw tables
(``followup_reference.py``: the working-hour clock from the chinese-calendar package, repeat callers
matched on the raw phone), the GX suites of the new marts pass and catch a broken count, and the
effects the generator planted point the right way. The same effects are found with intervals that
exclude "no effect" at the default scale in ``test_followup_default_scale.py``.
"""

from __future__ import annotations

import json
from datetime import datetime

import duckdb
import pandas as pd
import pytest

import followup_reference as ref  # tests/transform is on sys.path (pytest rootdir-relative import)

TOL = 1e-9


@pytest.fixture(scope="module")
def warehouse(built_settings):
    con = duckdb.connect(str(built_settings.work_db), read_only=True)
    try:
        raw = {name: con.sql(f"select * from raw.{name}").df()
               for name in ("surveys", "complaints", "call_logs", "policies")}
        marts = {name: con.sql(f"select * from marts.{name}").df()
                 for name in ("fct_followup_case", "mart_followup", "mart_contact_resolution",
                              "mart_complaint_regulatory", "mart_complaints")}
        as_of = con.sql("select as_of_date from intermediate.int_warehouse__as_of").fetchall()[0][0]
    finally:
        con.close()
    truth = json.loads((built_settings.landing_dir / "_truth.json").read_text(encoding="utf-8"))
    return {"raw": raw, "marts": marts, "as_of": as_of, "truth": truth}


def test_working_hour_clock_of_the_reference_crosses_a_holiday_and_a_make_up_saturday():
    # Friday 13 Sep 2024 16:00; Saturday 14 is a make-up working day, 15-17 Mid-Autumn Festival
    assert ref.add_working_hours(datetime(2024, 9, 13, 16), 24) == datetime(2024, 9, 19, 13)
    # a deadline that ends on a closing time stays on that day
    assert ref.add_working_hours(datetime(2024, 9, 13, 9), 9) == datetime(2024, 9, 13, 18)
    # opened on a holiday: the clock starts at the next opening (Wednesday 18, 09:00)
    assert ref.add_working_hours(datetime(2024, 9, 16, 11), 1) == datetime(2024, 9, 18, 10)


def test_every_case_with_its_deadline_closing_and_escalation_equals_the_recomputation(warehouse):
    expected = ref.followup_cases(warehouse["raw"]["surveys"], warehouse["raw"]["complaints"],
                                  warehouse["raw"]["call_logs"], warehouse["as_of"])
    fact = warehouse["marts"]["fct_followup_case"]
    assert len(expected) == len(fact) > 300
    assert set(expected["case_key"]) == set(fact["case_key"])
    merged = expected.merge(fact, on="case_key", suffixes=("_exp", "_mart"))
    due_gap = (pd.to_datetime(merged["due_ts_exp"]) - pd.to_datetime(merged["due_ts_mart"])).abs()
    assert (due_gap <= pd.Timedelta(seconds=1)).all(), merged.loc[due_gap > pd.Timedelta(seconds=1),
                                                                  ["case_key", "due_ts_exp", "due_ts_mart"]].head()
    closed_exp, closed_mart = pd.to_datetime(merged["closed_ts_exp"]), pd.to_datetime(merged["closed_ts_mart"])
    same_closing = (closed_exp == closed_mart) | (closed_exp.isna() & closed_mart.isna())
    assert same_closing.all(), merged.loc[~same_closing, ["case_key", "closed_ts_exp", "closed_ts_mart"]].head()
    for column in ("is_overdue", "escalation_level"):
        bad = merged[f"{column}_exp"].astype(int) != merged[f"{column}_mart"].astype(int)
        assert not bad.any(), merged.loc[bad, ["case_key", f"{column}_exp", f"{column}_mart"]].head()
    # the data exercises every branch of the rules
    assert {0, 1, 2} <= set(fact["escalation_level"])
    assert set(fact["closed_by"].dropna()) == {"FOLLOW_UP_CALL", "COMPLAINT_CLOSED"}
    assert fact["is_open_overdue"].any() and fact["is_closed_within_deadline"].any()
    # and the working clock is not calendar hours in disguise: some detractor deadline lies beyond 24 h
    det = fact[fact["reason"] == "DETRACTOR"]
    span = (pd.to_datetime(det["due_ts"]) - pd.to_datetime(det["opened_ts"])).dt.total_seconds() / 3600
    assert span.min() >= 24 and span.max() > 24 * 4


def test_the_monthly_mart_adds_up_the_cases(warehouse):
    fact, mart = warehouse["marts"]["fct_followup_case"], warehouse["marts"]["mart_followup"]
    assert mart["cases_opened"].sum() == len(fact)
    assert mart["overdue"].sum() == fact["is_overdue"].sum()
    assert mart["closed_within_deadline"].sum() == fact["is_closed_within_deadline"].sum()
    assert (mart["cases_opened"] == mart["closed_within_deadline"] + mart["overdue"] + mart["not_yet_due"]).all()
    # the backlog at the end of the last month is what is open on the as-of date (its month ends after it)
    last = mart[mart["month"] == mart["month"].max()]
    assert last["open_at_month_end"].sum() == (~fact["is_closed"]).sum()
    assert last["overdue_at_month_end"].sum() >= fact["is_open_overdue"].sum()


def test_repeat_contacts_equal_the_recomputation_on_the_raw_phone(warehouse):
    expected = ref.repeat_contacts(warehouse["raw"]["call_logs"])
    mart = warehouse["marts"]["mart_contact_resolution"].copy()
    mart["month"] = pd.to_datetime(mart["month"]).dt.date
    merged = expected.merge(mart, on=["month", "branch_code", "queue", "call_type"], how="left",
                            suffixes=("_exp", "_mart"), indicator=True)
    assert (merged["_merge"] == "both").all()
    for column in ("contacts", "repeat_contacts", "repeat_contacts_caller_only"):
        assert (merged[f"{column}_exp"] == merged[f"{column}_mart"]).all(), column
    assert mart["contacts"].sum() == expected["contacts"].sum() > 1000
    assert expected["repeat_contacts_caller_only"].sum() > 0  # the hashed-phone rule matters
    ratio = mart["first_contacts"] / mart["contacts"]
    both = mart["contacts"] > 0
    assert ((mart.loc[both, "first_contact_resolution"] - ratio[both]).abs() <= TOL).all()


def test_quarterly_density_index_and_escalations_equal_the_recomputation(warehouse):
    expected = ref.quarterly_complaint_index(warehouse["raw"]["complaints"], warehouse["raw"]["policies"],
                                             warehouse["as_of"])
    mart = warehouse["marts"]["mart_complaint_regulatory"]
    quarters = mart[mart["period_type"] == "QUARTER"].copy()
    quarters["quarter"] = pd.to_datetime(quarters["period_start"]).dt.date
    merged = expected.merge(quarters, on=["branch_code", "quarter"], suffixes=("_exp", "_mart"))
    assert len(merged) == len(quarters) >= 20 * 6
    for column in ("received", "regulator_routed", "policies_in_force", "escalated"):
        assert (merged[f"{column}_exp"] == merged[f"{column}_mart"]).all(), column
    assert ((merged["written_premium_exp"] - merged["written_premium_mart"].astype(float)).abs() < 0.005).all()
    both = merged["complaint_index_exp"].notna()
    assert both.sum() > 100 and (merged["complaint_index_mart"].notna() == both).all()
    assert ((merged.loc[both, "complaint_index_exp"] - merged.loc[both, "complaint_index_mart"]).abs() <= TOL).all()
    assert merged["escalated_exp"].sum() > 0, "the sample data plants escalations"


def test_month_rows_reuse_the_complaint_mart_and_quarters_carry_the_published_median(warehouse):
    mart, complaints = warehouse["marts"]["mart_complaint_regulatory"], warehouse["marts"]["mart_complaints"]
    months = mart[mart["period_type"] == "MONTH"].merge(
        complaints, left_on=["branch_code", "period_start"], right_on=["branch_code", "month"], suffixes=("", "_c"))
    assert len(months) == len(complaints)
    for column in ("received", "regulator_routed", "policies_in_force"):
        assert (months[column] == months[f"{column}_c"]).all(), column
    same = months["per_10k_policies"].isna() & months["per_10k_policies_c"].isna()
    assert (same | ((months["per_10k_policies"] - months["per_10k_policies_c"]).abs() <= TOL)).all()
    quarters = mart[mart["period_type"] == "QUARTER"]
    # the data (2024-2025) is later than every published notice; the latest is 2023 Q1: 3.66 per ¥100M, 0.26 per 10k
    assert set(quarters["industry_period"]) == {"2023Q1"}
    assert set(quarters["industry_regulator_per_100m_premium"]) == {3.66}
    assert mart.loc[mart["period_type"] == "MONTH", "industry_period"].isna().all()
    # year-on-year change only where a year earlier exists (the data starts in January 2024)
    yoy = quarters.dropna(subset=["per_100m_premium_yoy_change"])
    assert len(yoy) > 0 and (pd.to_datetime(yoy["period_start"]) >= pd.Timestamp("2025-01-01")).all()


def test_planted_effects_point_the_right_way(warehouse):
    truth, fact = warehouse["truth"], warehouse["marts"]["fct_followup_case"]
    decided = fact[fact["is_overdue"] | fact["is_closed_within_deadline"]]
    share = decided.groupby("branch_code")["is_overdue"].mean().sort_values(ascending=False)
    count = decided.groupby("branch_code")["is_overdue"].sum().sort_values(ascending=False)
    branch = truth["neglected_followup_branch"]
    assert share.index[0] == branch and count.index[0] == branch, (share.head(3), count.head(3))

    contacts = warehouse["marts"]["mart_contact_resolution"].groupby("queue")[["contacts", "repeat_contacts"]].sum()
    rates = (contacts["repeat_contacts"] / contacts["contacts"]).sort_values(ascending=False)
    assert rates.index[0] == truth["repeat_call_queue"], rates

    det = decided[decided["reason"] == "DETRACTOR"]
    followed, left = det[det["is_followed_up_in_time"]], det[~det["is_followed_up_in_time"]]
    assert followed["next_satisfied"].dropna().mean() > left["next_satisfied"].dropna().mean()
    assert followed.loc[followed["renewal_due"], "renewed"].mean() > left.loc[left["renewal_due"], "renewed"].mean()


SUITES = ["marts_fct_followup_case", "marts_mart_followup", "marts_mart_contact_resolution",
          "marts_mart_complaint_regulatory"]


def test_the_gx_suites_pass_and_catch_a_lost_case(built_settings, copy_settings):
    from dagster_project.lib.quality.validate import validate_suites

    results = validate_suites(built_settings.work_db, SUITES)
    failed = {r.suite_name: [o.label for o in r.outcomes if not o.success] for r in results if not r.success}
    assert not failed, failed
    assert sum(len(r.outcomes) for r in results) > 40  # the suites hold only what dbt cannot check (44 outcomes)

    settings = copy_settings(built_settings, with_landing=False)
    con = duckdb.connect(str(settings.work_db))
    try:
        con.execute("delete from marts.fct_followup_case where case_key = (select min(case_key) from "
                    "marts.fct_followup_case where reason = 'DETRACTOR')")
    finally:
        con.close()
    broken = {r.suite_name: r for r in validate_suites(settings.work_db, SUITES[:2])}
    lost = [o.description for o in broken["marts_fct_followup_case"].outcomes if not o.success]
    assert lost == ["every response scoring at or below the detractor threshold has its case"], lost
    recon = [o.description for o in broken["marts_mart_followup"].outcomes if not o.success]
    assert recon == ["cases opened and overdue in the mart = the cases of fct_followup_case"], recon
