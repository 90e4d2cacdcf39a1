"""The marts find what the generator planted (``_truth.json`` in the landing folder)."""

from __future__ import annotations

import json

import duckdb
import pytest


@pytest.fixture(scope="module")
def planted(built_settings):
    truth = json.loads((built_settings.landing_dir / "_truth.json").read_text(encoding="utf-8"))
    con = duckdb.connect(str(built_settings.work_db), read_only=True)
    try:
        survey = con.sql("""
            select branch_code, sum(satisfied)::double / sum(responses) as csat,
                   count(*) as months, count(case when significantly_below then 1 end) as months_below
            from marts.mart_stage_satisfaction
            where stage = 'SURVEY'
            group by branch_code
            order by csat
        """).fetchall()
        handling = con.sql("""
            select branch_code, quantile_cont(handling_days, 0.9) as p90, count(*) as closed
            from intermediate.int_complaints__lifecycle
            where is_closed
            group by branch_code
            order by p90 desc
        """).fetchall()
        renewal = con.sql("""
            select
                count(case when handled_within_7d and due_for_renewal and renewed then 1 end)::double
                    / nullif(count(case when handled_within_7d and due_for_renewal then 1 end), 0) as fast_rate,
                count(case when handled_after_15d and due_for_renewal and renewed then 1 end)::double
                    / nullif(count(case when handled_after_15d and due_for_renewal then 1 end), 0) as slow_rate,
                count(case when handled_within_7d and due_for_renewal then 1 end) as fast_due,
                count(case when handled_after_15d and due_for_renewal then 1 end) as slow_due
            from marts.fct_complaint_winback
        """).fetchall()[0]
    finally:
        con.close()
    return {"truth": truth, "survey": survey, "handling": handling, "renewal": renewal}


def test_slow_survey_branch_has_lowest_survey_csat_and_is_flagged(planted):
    branch = planted["truth"]["slow_survey_branch"]
    lowest, csat, months, months_below = planted["survey"][0]
    assert lowest == branch, f"lowest SURVEY csat is {lowest} ({csat:.3f}), planted {branch}"
    # significantly_below (wilson_high < company csat) in most of its months
    assert months_below > months / 2, f"{branch} significantly below in {months_below} of {months} months"
    others_flagged = [r for r in planted["survey"][1:] if r[3] > r[2] / 2]
    assert not others_flagged, f"other branches flagged in most months: {others_flagged}"


def test_long_complaint_branch_has_highest_handling_p90(planted):
    branch = planted["truth"]["long_complaint_branch"]
    top, p90, closed = planted["handling"][0]
    assert top == branch, f"highest complaint handling p90 is {top} ({p90:.1f} d), planted {branch}"
    assert p90 > 15
    assert closed >= 10, f"{branch} p90 rests on only {closed} closed complaints"


def test_fast_handling_wins_back_more_renewals(planted):
    fast_rate, slow_rate, fast_due, slow_due = planted["renewal"]
    assert fast_due >= 10 and slow_due >= 5, f"too few due complainants: fast {fast_due}, slow {slow_due}"
    assert fast_rate > slow_rate, f"handled within 7 d renew {fast_rate:.2f}, after 15 d {slow_rate:.2f}"
