"""Headline KPIs in the marts equal an independent pandas computation from the raw tables.

Counts must match exactly, rates and percentiles to 1e-9. The reference computation lives in
``kpi_reference.py`` and reads only ``raw.*`` (what ingest loaded), never a dbt model.
"""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd
import pytest

import kpi_reference as ref  # tests/transform is on sys.path (pytest rootdir-relative import)

TOL = 1e-9


@pytest.fixture(scope="module")
def warehouse(built_settings):
    con = duckdb.connect(str(built_settings.work_db), read_only=True)
    try:
        tables = {name: con.sql(f"select * from raw.{name}").df()
                  for name in ("policies", "claim_events", "call_logs", "surveys", "complaints", "audits")}
        marts = {name: con.sql(f"select * from marts.{name}").df()
                 for name in ("mart_stage_satisfaction", "mart_claim_cycle", "mart_complaints",
                              "mart_call_center_monthly", "mart_call_center_daily", "mart_mystery_shopping",
                              "mart_winback", "fct_complaint_winback")}
        as_of = con.sql("select as_of_date from intermediate.int_warehouse__as_of").fetchall()[0][0]
    finally:
        con.close()
    truth = json.loads((built_settings.landing_dir / "_truth.json").read_text(encoding="utf-8"))
    return {"raw": tables, "marts": marts, "as_of": as_of, "truth": truth}


def _dates(df: pd.DataFrame, *cols: str) -> pd.DataFrame:
    df = df.copy()
    for col in cols:
        df[col] = pd.to_datetime(df[col]).dt.date
    return df


def _joined(expected: pd.DataFrame, mart: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Inner-join on the keys and insist that every expected key is present in the mart."""
    merged = expected.merge(mart, on=keys, how="left", suffixes=("_exp", "_mart"), indicator=True)
    missing = merged[merged["_merge"] != "both"]
    assert missing.empty, f"keys missing from the mart: {missing[keys].head().to_dict('records')}"
    return merged


def _assert_equal(merged: pd.DataFrame, column: str, *, exact: bool) -> None:
    exp, got = merged[f"{column}_exp"].astype(float), merged[f"{column}_mart"].astype(float)
    both_null = exp.isna() & got.isna()
    if exact:
        bad = ~both_null & (exp != got)
    else:
        bad = ~both_null & ~(np.abs(exp - got) <= TOL)
    assert not bad.any(), f"{column}: {merged.loc[bad].head(5).to_dict('records')}"


def test_stage_csat_and_wilson_bounds(warehouse):
    raw = warehouse["raw"]
    expected = ref.stage_csat(raw["surveys"], raw["claim_events"], raw["policies"], raw["complaints"])
    mart = _dates(warehouse["marts"]["mart_stage_satisfaction"], "month")
    assert len(expected) == len(mart) > 50
    merged = _joined(expected, mart, ["branch_code", "stage", "month"])
    for col in ("responses", "satisfied"):
        _assert_equal(merged, col, exact=True)
    for col in ("csat", "wilson_low", "wilson_high"):
        _assert_equal(merged, col, exact=False)


def test_complaint_volumes_and_valid_rate(warehouse):
    expected = ref.complaint_volumes(warehouse["raw"]["complaints"])
    mart = _dates(warehouse["marts"]["mart_complaints"], "month")
    assert expected["received"].sum() == mart["received"].sum() > 0
    merged = _joined(expected, mart, ["branch_code", "month"])
    for col in ("received", "accepted", "valid"):
        _assert_equal(merged, col, exact=True)
    _assert_equal(merged, "valid_rate", exact=False)


def test_complaint_handling_p90_and_within_deadline(warehouse):
    expected = ref.complaint_handling(warehouse["raw"]["complaints"])
    mart = _dates(warehouse["marts"]["mart_complaints"], "month")
    assert expected["closed"].sum() == mart["closed"].sum() > 0
    merged = _joined(expected, mart, ["branch_code", "month"])
    _assert_equal(merged, "closed", exact=True)
    for col in ("handling_days_p50", "handling_days_p90", "within_deadline_share"):
        _assert_equal(merged, col, exact=False)


def test_claims_reported_and_paid_within_10_days(warehouse):
    raw = warehouse["raw"]
    expected = ref.claim_cycle(raw["claim_events"], raw["policies"])
    mart = _dates(warehouse["marts"]["mart_claim_cycle"], "month")
    assert expected["claims_reported"].sum() == mart["claims_reported"].sum() > 100
    merged = _joined(expected, mart, ["branch_code", "month"])
    for col in ("claims_reported", "paid_after_agreement", "paid_within_10d"):
        _assert_equal(merged, col, exact=True)
    _assert_equal(merged, "paid_within_10d_share", exact=False)


def test_follow_ups_reached_and_completed(warehouse):
    expected = ref.followups(warehouse["raw"]["call_logs"])
    mart = _dates(warehouse["marts"]["mart_call_center_monthly"], "month")
    merged = _joined(expected, mart, ["branch_code", "month"])
    for col in ("followup_calls", "followups_reached", "followups_completed"):
        _assert_equal(merged, col, exact=True)
    _assert_equal(merged, "followup_completion_rate", exact=False)
    # refusals make the two differ
    assert (expected["followups_reached"] > expected["followups_completed"]).any()


def test_daily_closed_claims_count_each_claim_once(warehouse):
    daily = warehouse["marts"]["mart_call_center_daily"]
    closed = warehouse["raw"]["claim_events"]
    closed = ref.latest_version(closed, "event_id")
    n_closed = closed[closed["event_type"] == "CLOSED"]["claim_no"].nunique()
    assert daily["closed_claims"].sum() == n_closed
    assert daily.loc[daily["queue"] != "OUTBOUND", "closed_claims"].isna().all()


def test_claim_decisions_open_claims_and_maturity(warehouse):
    raw = warehouse["raw"]
    expected = ref.claim_decisions(raw["claim_events"], raw["policies"], warehouse["as_of"])
    mart = _dates(warehouse["marts"]["mart_claim_cycle"], "month")
    merged = _joined(expected, mart, ["branch_code", "month"])
    for col in ("decided_claims", "decided_within_30d", "claims_open", "is_mature"):
        _assert_equal(merged, col, exact=True)
    # the last months are immature, the early ones mature
    by_month = mart.groupby("month")["is_mature"].all().sort_index()
    assert not by_month.iloc[-1] and by_month.iloc[0]


def test_complaint_backlog_and_its_reconciliation(warehouse):
    mart = _dates(warehouse["marts"]["mart_complaints"], "month")
    month_ends = sorted({(pd.Timestamp(m) + pd.offsets.MonthEnd(0)).date() for m in mart["month"]})
    expected = ref.complaint_backlog(warehouse["raw"]["complaints"], month_ends)
    merged = _joined(expected, mart, ["branch_code", "month"])
    _assert_equal(merged, "open_backlog", exact=True)
    ordered = mart.sort_values(["branch_code", "month"])
    opening = ordered.groupby("branch_code")["open_backlog"].shift(1).fillna(0)
    assert (opening + ordered["received"] - ordered["closed"] == ordered["open_backlog"]).all()


def test_manual_answer_rate_and_service_level(warehouse):
    expected = ref.call_center(warehouse["raw"]["call_logs"])
    mart = _dates(warehouse["marts"]["mart_call_center_monthly"], "month")
    assert expected["offered"].sum() == mart["offered"].sum() > 100
    merged = _joined(expected, mart, ["branch_code", "month"])
    for col in ("offered", "answered"):
        _assert_equal(merged, col, exact=True)
    for col in ("manual_answer_rate", "service_level_20s"):
        _assert_equal(merged, col, exact=False)


def test_audit_pass_rate(warehouse):
    expected = ref.audit_pass_rate(warehouse["raw"]["audits"])
    mart = _dates(warehouse["marts"]["mart_mystery_shopping"], "quarter")
    assert len(expected) == len(mart) > 0
    merged = _joined(expected, mart, ["branch_code", "quarter"])
    for col in ("audits", "passed"):
        _assert_equal(merged, col, exact=True)
    _assert_equal(merged, "pass_rate", exact=False)


def test_winback_rate(warehouse):
    raw = warehouse["raw"]
    facts = ref.winback(raw["complaints"], raw["policies"], pd.Timestamp(warehouse["as_of"]))
    fct = warehouse["marts"]["fct_complaint_winback"]
    assert sorted(facts["complaint_no"]) == sorted(fct["complaint_no"])
    cols = ["complaint_no", "due_for_renewal", "renewed", "retained_as_customer", "not_yet_due"]
    merged = facts.merge(fct[cols], on="complaint_no", suffixes=("_exp", "_mart"))
    for col in cols[1:]:
        _assert_equal(merged, col, exact=True)
    # the measures are exercised: some due complainants renew, some are lost as customers, some
    # are kept through another policy, some are not due yet
    assert facts["renewed"].sum() > 0 and facts["not_yet_due"].sum() > 0
    assert (facts["retained_as_customer"] & ~facts["renewed"]).any()
    assert (facts["due_for_renewal"] & ~facts["retained_as_customer"]).any()
    expected = ref.winback_by_branch_month(facts)
    mart = _dates(warehouse["marts"]["mart_winback"], "month")
    merged = _joined(expected, mart, ["branch_code", "month"])
    for col in ("due_for_renewal", "renewed", "retained", "not_yet_due"):
        _assert_equal(merged, col, exact=True)
    for col in ("winback_rate", "retention_rate"):
        _assert_equal(merged, col, exact=False)


def test_legal_period_end_follows_the_civil_code():
    from datetime import date

    # 15 days from Friday 1 March 2024 end on Saturday 16 March: the period runs to Monday 18 March
    assert ref.legal_period_end(date(2024, 3, 1), 15) == date(2024, 3, 18)
    # 10 days from 24 September 2024 end on 4 October (National Day holiday, 1-7 October): the 8th
    assert ref.legal_period_end(date(2024, 9, 24), 10) == date(2024, 10, 8)
    # a make-up working day (Saturday 12 October 2024) is a working day
    assert ref.legal_period_end(date(2024, 9, 27), 15) == date(2024, 10, 12)
    # a working day ends the period where it falls
    assert ref.legal_period_end(date(2024, 3, 4), 10) == date(2024, 3, 14)


def test_wilson_reference_matches_published_example():
    # Wilson 95% score interval: 85 of 100 -> [0.767, 0.907]; 170 of 200 -> [0.794, 0.893]
    low, high = ref.wilson(85, 100)
    assert (round(low, 3), round(high, 3)) == (0.767, 0.907)
    low, high = ref.wilson(170, 200)
    assert (round(low, 3), round(high, 3)) == (0.794, 0.893)
