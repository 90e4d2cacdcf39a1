"""The data set of ``make run`` makes every mart meaningful and shows every planted effect.

Built once per session at the default scale (tests/transform/conftest.py). Each planted effect of
``_truth.json`` must be found with statistics, not in direction only: an interval that excludes
"no effect". The figures computed here are the ones docs/definitions.md ("Sample data") reports.
"""

from __future__ import annotations

import math


from dagster_project.lib.report.metrics import MIN_SAMPLE_SIZE, wilson_interval

Z = 1.96


def median_interval(values: list[float]) -> tuple[float, float, float]:
    """Median and its distribution-free 95% interval (order statistics of a Binomial(n, 1/2))."""
    xs = sorted(values)
    n = len(xs)
    half = Z * math.sqrt(n) / 2
    lo = max(0, math.floor(n / 2 - half) - 1)
    hi = min(n - 1, math.ceil(n / 2 + half))
    mid = (xs[(n - 1) // 2] + xs[n // 2]) / 2
    return mid, xs[lo], xs[hi]


def complaint_quarters(default_scale_con) -> list[tuple[str, object, int]]:
    return default_scale_con.execute("""
        select b.code, q.quarter, coalesce(c.n, 0)
        from reference.branches as b
        cross join (select distinct date_trunc('quarter', month) as quarter from marts.mart_complaints) as q
        left join (select branch_code, date_trunc('quarter', month) as quarter, sum(received) as n
                   from marts.mart_complaints group by all) as c
            on c.branch_code = b.code and c.quarter = q.quarter
    """).fetchall()


def test_every_branch_has_complaints_in_every_quarter(default_scale_con):
    rows = complaint_quarters(default_scale_con)
    assert len({q for _, q, _ in rows}) >= 6  # six quarters or more
    empty = [(b, str(q)) for b, q, n in rows if n == 0]
    assert not empty, f"branch-quarters without a complaint: {empty}"
    counts = sorted(n for _, _, n in rows)
    assert counts[0] >= 3, f"the quietest branch-quarter has {counts[0]} complaints"


def test_a_fifth_of_the_satisfaction_cells_reach_the_minimum_sample(default_scale_con):
    cells, credible = default_scale_con.execute(f"""
        select count(*), count(*) filter (where responses >= {MIN_SAMPLE_SIZE})
        from marts.mart_stage_satisfaction""").fetchone()
    assert credible / cells >= 0.2, f"{credible} of {cells} cells have {MIN_SAMPLE_SIZE}+ responses"
    # low_sample is exactly the complement
    flagged = default_scale_con.execute("select count(*) filter (where not low_sample) from marts.mart_stage_satisfaction").fetchone()[0]
    assert flagged == credible


def test_the_winback_cohort_has_due_complainants(default_scale_con):
    due, renewed, retained = default_scale_con.execute("""
        select count(*) filter (where due_for_renewal), count(*) filter (where renewed),
               count(*) filter (where retained_as_customer) from marts.fct_complaint_winback""").fetchone()
    assert due >= 200, f"only {due} complainants are due"
    assert 0 < renewed <= retained <= due


def test_high_risk_is_a_clear_minority_of_claimants(default_scale_con):
    share = default_scale_con.execute("select distinct high_risk_share_of_claimants from marts.mart_high_risk_profile").fetchone()[0]
    assert 0.05 < share <= 1 / 3, f"HIGH_RISK is {share:.1%} of claimants"


def test_regulator_routed_rates_are_near_the_published_medians(default_scale_con):
    """Quarterly regulator-routed complaints per 10k policies in force (quarter-end) and per ¥100M
    written premium, company-wide, against the regulator's P&C medians: 0.26 / 3.66 (2023 Q1) and
    0.43 / 4.50 (2020 Q2). The book sits between or near them (within 25%)."""
    rows = default_scale_con.execute("""
        with q as (
            select date_trunc('quarter', month) as quarter, sum(regulator_routed) as routed,
                   sum(written_premium) as premium,
                   sum(policies_in_force) filter (where month(month) % 3 = 0) as in_force
            from marts.mart_complaints group by 1)
        select quarter, routed * 10000.0 / in_force, routed * 1e8 / premium from q order by 1""").fetchall()
    per_10k = sum(r[1] for r in rows) / len(rows)
    per_100m = sum(r[2] for r in rows) / len(rows)
    assert 0.26 * 0.75 <= per_10k <= 0.43 * 1.25, per_10k
    assert 3.66 * 0.75 <= per_100m <= 4.50 * 1.25, per_100m


def test_slow_survey_branch_is_lowest_and_significantly_below(default_scale_con, default_scale_truth):
    branch = default_scale_truth["effects"]["slow_survey"]["branch"]
    rows = default_scale_con.execute("""
        select branch_code, sum(satisfied) as x, sum(responses) as n,
               count(*) filter (where significantly_below) as below, count(*) as months
        from marts.mart_stage_satisfaction where stage = 'SURVEY' group by 1 order by x / n""").fetchall()
    lowest, x, n, below, months = rows[0]
    assert lowest == branch
    low, high = wilson_interval(x, n)
    others_x = sum(r[1] for r in rows[1:])
    others_n = sum(r[2] for r in rows[1:])
    o_low, _ = wilson_interval(others_x, others_n)
    assert high < o_low, f"{branch} {x}/{n} ({low:.3f}-{high:.3f}) vs the others' lower bound {o_low:.3f}"
    assert below >= 0.8 * months


def test_long_complaint_branch_has_the_longest_handling_clear_of_the_company(default_scale_con, default_scale_truth):
    branch = default_scale_truth["effects"]["long_complaint"]["branch"]
    handled = default_scale_con.execute("select branch_code, handling_days from marts.fct_complaint_winback").fetchall()
    by_branch: dict[str, list[float]] = {}
    for b, days in handled:
        by_branch.setdefault(b, []).append(float(days))
    medians = {b: median_interval(v) for b, v in by_branch.items() if len(v) >= 30}
    top = max(medians, key=lambda b: medians[b][0])
    assert top == branch, {b: round(m[0], 1) for b, m in medians.items()}
    _, low, _ = medians[branch]
    company = [d for b, v in by_branch.items() if b != branch for d in v]
    _, _, c_high = median_interval(company)
    assert low > c_high, f"{branch} median interval starts at {low:.1f} d, the company's ends at {c_high:.1f} d"


def test_fast_handling_wins_back_more_renewals_beyond_chance(default_scale_con, default_scale_truth):
    effect = default_scale_truth["effects"]["winback"]
    fast_x, fast_n, slow_x, slow_n = default_scale_con.execute(f"""
        select count(*) filter (where handling_days <= {effect['fast_days']} and renewed),
               count(*) filter (where handling_days <= {effect['fast_days']}),
               count(*) filter (where handling_days > {effect['slow_days']} and renewed),
               count(*) filter (where handling_days > {effect['slow_days']})
        from marts.fct_complaint_winback where due_for_renewal""").fetchone()
    assert fast_n >= 100 and slow_n >= 30, (fast_n, slow_n)
    p1, p2 = fast_x / fast_n, slow_x / slow_n
    se = math.sqrt(p1 * (1 - p1) / fast_n + p2 * (1 - p2) / slow_n)
    low = p1 - p2 - Z * se
    assert low > 0, f"fast {fast_x}/{fast_n} vs slow {slow_x}/{slow_n}: difference interval starts at {low:.3f}"


def test_high_risk_cluster_is_the_top_lift_beyond_chance(default_scale_con, default_scale_truth):
    cluster = default_scale_truth["effects"]["high_risk_cluster"]
    value = f"{cluster['business_source']}|{cluster['line_of_business']}"
    rows = default_scale_con.execute("""
        select value, lift, high_risk_customers, customers, total_high_risk_customers, total_customers
        from marts.mart_high_risk_profile
        where attribute = 'business_source_x_line' and not low_sample order by lift desc""").fetchall()
    assert rows[0][0] == value
    _, lift, x, n, total_x, total_n = rows[0]
    low, _ = wilson_interval(x, n)
    rest_x, rest_n = total_x - x, total_n - n
    _, rest_high = wilson_interval(rest_x, rest_n)
    assert low > rest_high, f"{value} high-risk rate from {low:.3f}, the rest up to {rest_high:.3f}"
    assert lift > 1.5
