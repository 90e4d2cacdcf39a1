"""The pure statistics and formatting of the snapshot (no I/O)."""

from __future__ import annotations

import math

import pytest

from dagster_project.lib.report.csv_export import guard_cell, to_csv
from dagster_project.lib.report.metrics import (
    COMPANY,
    KpiRow,
    benjamini_hochberg,
    changed_keys,
    compare_periods,
    company_proportion,
    format_delta,
    format_value,
    month_over_month,
    parse_period,
    poisson_rate_z_test,
    previous_period,
    revision_reason,
    two_proportion_z_test,
    wilson_interval,
)


def test_wilson_interval_matches_the_reference_examples():
    # Wilson 95% score interval: 85/100 -> [0.767, 0.907]; 170/200 -> [0.794, 0.893]
    low, high = wilson_interval(85, 100)
    assert (round(low, 3), round(high, 3)) == (0.767, 0.907)
    low, high = wilson_interval(170, 200)
    assert (round(low, 3), round(high, 3)) == (0.794, 0.893)
    assert wilson_interval(0, 0) is None
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0


def test_two_proportion_z_test_by_hand():
    # 0.5 vs 0.4 with n = 100 each: pooled 0.45, se = sqrt(.45*.55*.02) = 0.070356, z = 1.4213
    z, p = two_proportion_z_test(50, 100, 40, 100)
    assert z == pytest.approx(0.1 / math.sqrt(0.45 * 0.55 * 0.02), rel=1e-12)
    assert p == pytest.approx(0.1552, abs=1e-4)
    assert two_proportion_z_test(5, 0, 4, 10) is None
    assert two_proportion_z_test(10, 10, 20, 20) is None  # pooled rate 1: no variance


def test_poisson_rate_test_is_symmetric_and_detects_a_doubling():
    z1, p1 = poisson_rate_z_test(60, 100_000, 30, 100_000)
    z2, p2 = poisson_rate_z_test(30, 100_000, 60, 100_000)
    assert z1 == pytest.approx(-z2) and p1 == pytest.approx(p2)
    # 60 vs 30 events on equal exposure: z = (60 - 45) / sqrt(90 * .25) = 3.162
    assert z1 == pytest.approx(15 / math.sqrt(22.5))
    assert p1 < 0.01
    # the same counts over twice the exposure are the same rate: no evidence of change
    assert poisson_rate_z_test(60, 200_000, 30, 100_000)[1] == pytest.approx(1.0)


def test_month_over_month_marks_only_significant_changes_and_judges_direction():
    small = month_over_month(KpiRow("JL", "csat.SURVEY", 0.80, 80, 100), KpiRow("JL", "csat.SURVEY", 0.85, 85, 100))
    assert small.delta == pytest.approx(-0.05) and not small.significant and small.p_value > 0.05
    big = month_over_month(KpiRow("JL", "csat.SURVEY", 0.80, 800, 1000),
                           KpiRow("JL", "csat.SURVEY", 0.85, 850, 1000))
    assert big.significant and big.direction == "down" and big.assessment == "worse"
    abandon = month_over_month(KpiRow("JL", "abandon_rate", 0.08, 800, 10000),
                               KpiRow("JL", "abandon_rate", 0.05, 500, 10000))
    assert abandon.significant and abandon.direction == "up" and abandon.assessment == "worse"
    # percentiles have no numerator: shown, never marked
    p90 = month_over_month(KpiRow("JL", "complaint_handling_days_p90", 30.0, None, 50),
                           KpiRow("JL", "complaint_handling_days_p90", 10.0, None, 50))
    assert p90.delta == 20.0 and p90.p_value is None and not p90.significant
    first = month_over_month(KpiRow("JL", "csat.SURVEY", 0.8, 8, 10), None)
    assert first.delta is None and not first.significant


def test_company_rate_is_pooled_not_the_mean_of_branch_rates():
    rows = [KpiRow("JL", "csat.REPORT", 0.9, 900, 1000), KpiRow("SC", "csat.REPORT", 0.5, 5, 10)]
    company = company_proportion(rows, "csat.REPORT")
    assert company == KpiRow(COMPANY, "csat.REPORT", 905 / 1010, 905, 1010)
    per10k = company_proportion([KpiRow("JL", "complaints_per_10k_policies", 2.0, 20, 100_000),
                                 KpiRow("SC", "complaints_per_10k_policies", 6.0, 30, 50_000)],
                                "complaints_per_10k_policies", scale=10_000)
    assert per10k.value == pytest.approx(50 * 10_000 / 150_000)


def test_changed_keys_lists_changed_added_and_removed_rows_with_tolerance():
    old = [KpiRow("JL", "csat.REPORT", 0.9, 90, 100), KpiRow("SC", "abandon_rate", 0.05, 5, 100)]
    assert changed_keys(old, [KpiRow("JL", "csat.REPORT", 0.9 + 1e-13, 90, 100),
                              KpiRow("SC", "abandon_rate", 0.05, 5, 100)]) == []
    notes = changed_keys(old, [KpiRow("JL", "csat.REPORT", 0.91, 91, 100), KpiRow("BJ", "abandon_rate", 0.1, 1, 10)])
    assert notes == ["abandon_rate@BJ added", "csat.REPORT@JL 0.9→0.91", "abandon_rate@SC removed"]
    assert revision_reason(notes).startswith("late data changed 3 number(s): abandon_rate@BJ added")
    assert "and 2 more" in revision_reason(notes, limit=1)


def test_a_revision_note_names_direct_changes_before_the_relative_indices_they_move():
    # three late complaints in JL move every branch's complaint index; the note must still say JL
    old = [KpiRow(b, "complaint_index", v) for b, v in (("AH", 1.5), ("BJ", 0.7), ("CQ", 2.4), ("JL", 1.0))]
    old += [KpiRow("JL", "complaints_received", 10), KpiRow(COMPANY, "complaints_received", 100)]
    new = [KpiRow(b, "complaint_index", v) for b, v in (("AH", 1.4), ("BJ", 0.6), ("CQ", 2.3), ("JL", 1.2))]
    new += [KpiRow("JL", "complaints_received", 13), KpiRow(COMPANY, "complaints_received", 103)]
    notes = changed_keys(old, new)
    # the branch where the late data landed, then the company, then the indices it moved
    assert notes[:2] == ["complaints_received@JL 10→13", f"complaints_received@{COMPANY} 100→103"]
    assert "complaints_received@JL" in revision_reason(notes, limit=1)


def test_periods():
    assert parse_period("2024-06").isoformat() == "2024-06-01"
    assert previous_period("2024-01") == "2023-12" and previous_period("2024-06") == "2024-05"
    for bad in ("2024-6", "2024-13", "24-06", "2024/06", ""):
        with pytest.raises(ValueError, match="YYYY-MM"):
            parse_period(bad)


def test_formatting_for_managers():
    assert format_value("csat.REPORT", 0.91234) == "91.2%"
    assert format_value("complaint_handling_days_p90", 14.96) == "15.0"
    assert format_value("complaints_received", 1234.0) == "1,234"
    assert format_value("abandon_rate", None) == "–"
    assert format_delta("csat.REPORT", -0.0123) == "-1.2 pp"
    assert format_delta("complaints_received", 5) == "+5"


def test_csv_guard_quotes_formula_text_but_not_numbers():
    assert guard_cell("=HYPERLINK(\"x\")") == "'=HYPERLINK(\"x\")"
    for text in ("+1", "-cmd", "@SUM(A1)", "\tx", "\rx"):
        assert guard_cell(text) == "'" + text
    assert guard_cell(-0.05) == -0.05 and guard_cell(3) == 3
    assert guard_cell("JL") == "JL" and guard_cell(None) == "" and guard_cell(True) == "true"
    out = to_csv(["a", "b"], [["=1+1", -2.5], ["北京", None]])
    assert out.splitlines() == ["a,b", "'=1+1,-2.5", "北京,"]


def test_benjamini_hochberg_by_hand():
    # m = 5, q = 0.05: thresholds 0.01, 0.02, 0.03, 0.04, 0.05 -> the three smallest are rejected
    assert benjamini_hochberg([0.012, 0.001, 0.029, 0.2, 0.045]) == [True, True, True, False, False]
    # step-up: 0.02 misses its own threshold (0.05/3) but is carried by 0.04 <= 0.05
    assert benjamini_hochberg([0.04, 0.02, 0.03]) == [True, True, True]
    assert benjamini_hochberg([0.5, 0.6]) == [False, False]
    assert benjamini_hochberg([]) == []


def test_compare_periods_discounts_a_lone_borderline_change_among_many():
    previous = [KpiRow(f"B{i:02d}", "csat.REPORT", 0.85, 850, 1000) for i in range(20)]
    current = [KpiRow(f"B{i:02d}", "csat.REPORT", 0.85, 850, 1000) for i in range(19)]
    current.append(KpiRow("B19", "csat.REPORT", 0.82, 820, 1000))  # p ~ 0.07 alone -> borderline
    current[0] = KpiRow("B00", "csat.REPORT", 0.815, 815, 1000)  # p ~ 0.035 alone
    changes = compare_periods(current, previous)
    assert month_over_month(current[0], previous[0]).significant  # alone it would be marked
    assert not changes[("B00", "csat.REPORT")].significant  # one of 20 tests: not enough
    big = compare_periods([KpiRow("B00", "csat.REPORT", 0.70, 700, 1000)], previous[:1])
    assert big[("B00", "csat.REPORT")].significant


def test_min_sample_size_is_the_dbt_var():
    from pathlib import Path

    import yaml

    from dagster_project.lib.report.metrics import MIN_SAMPLE_SIZE

    project = yaml.safe_load((Path(__file__).parents[2] / "dbt" / "dbt_project.yml").read_text(encoding="utf-8"))
    assert project["vars"]["min_sample_size"] == MIN_SAMPLE_SIZE >= 30


def test_poisson_interval_and_row_intervals():
    from dagster_project.lib.report.metrics import interval_of, poisson_interval

    low, high = poisson_interval(10, 1000.0, 10_000)
    # exact (Garwood) 95% limits for 10 events: 4.795 .. 18.39
    assert low == pytest.approx(47.95, rel=0.01) and high == pytest.approx(183.9, rel=0.01)
    assert poisson_interval(0, 100.0)[0] == 0.0
    assert interval_of(KpiRow("ALL", "valid_complaint_rate", 0.85, 85, 100)) == pytest.approx((0.767, 0.907), abs=5e-4)
    assert interval_of(KpiRow("ALL", "complaints_received", 5.0)) is None


def test_an_immature_claim_month_is_not_compared():
    from dagster_project.lib.report.metrics import month_over_month

    now = KpiRow("ALL", "claims_paid_within_10d_share", 0.5, 50, 100, mature=False)
    before = KpiRow("ALL", "claims_paid_within_10d_share", 0.99, 990, 1000, mature=True)
    change = month_over_month(now, before)
    assert change.immature and not change.significant and change.p_value is None
    assert month_over_month(KpiRow(*now.key, 0.5, 50, 100, mature=True), before).significant


def test_weakest_cell_is_chosen_among_cells_with_enough_responses():
    from dagster_project.lib.report.html import worst_cells
    from dagster_project.lib.report.marts import SatisfactionCell
    from dagster_project.lib.report.metrics import wilson_interval

    def cell(branch, n, x, months=1):
        lo, hi = wilson_interval(x, n)
        return SatisfactionCell(branch, "SURVEY", n, x, x / n, lo, hi, None, n < 100, False, months)

    monthly = [cell("AA", 2, 0), cell("BB", 150, 120), cell("CC", 40, 30), cell("DD", 10, 9)]
    rolling = [cell("AA", 6, 2, 3), cell("BB", 450, 370, 3), cell("CC", 120, 80, 3), cell("DD", 30, 27, 3)]
    ranked = worst_cells(monthly, rolling=rolling)
    # AA (0 of 2) is never ranked, not even pooled; CC is ranked on its three months; DD is left out
    assert [(c.branch_code, c.months) for c in ranked] == [("CC", 3), ("BB", 1)]
