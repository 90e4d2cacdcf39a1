"""At the default scale of ``make run`` the follow-up, contact-resolution and regulatory marts find
what the generator planted, with intervals that exclude "no effect" (docs/definitions.md, "Sample
data"). Built once per session (tests/transform/conftest.py)."""

from __future__ import annotations

import math

import pytest

from dagster_project.lib.report.metrics import wilson_interval

Z = 1.96


def difference_low(x1: int, n1: int, x2: int, n2: int) -> float:
    """Lower end of the 95% normal interval of p1 - p2."""
    p1, p2 = x1 / n1, x2 / n2
    return p1 - p2 - Z * math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)


def test_the_neglected_branch_has_the_most_overdue_cases_clear_of_every_other_branch(default_scale_con, default_scale_truth):
    branch = default_scale_truth["neglected_followup_branch"]
    rows = default_scale_con.execute("""
        select branch_code, sum(overdue) as overdue, sum(cases_decided) as decided
        from marts.mart_followup group by 1 order by overdue desc""").fetchall()
    assert rows[0][0] == branch, rows[:3]
    _, x, n = rows[0]
    low, _ = wilson_interval(x, n)
    others = [(b, wilson_interval(ox, on)[1]) for b, ox, on in rows[1:] if on]
    highest = max(others, key=lambda r: r[1])
    assert low > highest[1], f"{branch} overdue {x}/{n} from {low:.3f}; {highest[0]} up to {highest[1]:.3f}"
    assert n >= 300


def test_the_repeat_call_queue_has_the_highest_repeat_rate_beyond_chance(default_scale_con, default_scale_truth):
    queue = default_scale_truth["repeat_call_queue"]
    rows = default_scale_con.execute("""
        select queue, sum(repeat_contacts) as repeats, sum(contacts) as contacts
        from marts.mart_contact_resolution group by 1 order by sum(repeat_contacts) / sum(contacts) desc""").fetchall()
    assert rows[0][0] == queue, rows
    low, _ = wilson_interval(rows[0][1], rows[0][2])
    for other, x, n in rows[1:]:
        _, high = wilson_interval(x, n)
        assert low > high, f"{queue} from {low:.3f}, {other} up to {high:.3f}"
    # the planted call-back probability is the repeat share a chain of call-backs settles at
    assert rows[0][1] / rows[0][2] == pytest.approx(default_scale_truth["effects"]["repeat_calls"]["call_back_probability"], abs=0.03)


def test_followed_up_detractors_answer_kinder_and_renew_more_beyond_chance(default_scale_con, default_scale_truth):
    (fx, fn, nx, nn, frx, frn, nrx, nrn) = default_scale_con.execute("""
        select sum(followed_up_next_satisfied), sum(followed_up_next_responses),
               sum(not_followed_up_next_satisfied), sum(not_followed_up_next_responses),
               sum(followed_up_renewed), sum(followed_up_renewal_due),
               sum(not_followed_up_renewed), sum(not_followed_up_renewal_due)
        from marts.mart_followup""").fetchone()
    assert min(fn, nn, frn, nrn) >= 200, (fn, nn, frn, nrn)
    low = difference_low(fx, fn, nx, nn)
    assert low > 0, f"next satisfied {fx}/{fn} vs {nx}/{nn}: the difference's interval starts at {low:.3f}"
    low = difference_low(frx, frn, nrx, nrn)
    assert low > 0, f"renewed {frx}/{frn} vs {nrx}/{nrn}: the difference's interval starts at {low:.3f}"
    planted = default_scale_truth["effects"]["followup_recovery"]
    # the renewal rates the generator draws (a few cases closed in time by a routine claim call blur them)
    assert frx / frn == pytest.approx(planted["followed_renewal_rate"], abs=0.05)
    assert nrx / nrn == pytest.approx(planted["not_followed_renewal_rate"], abs=0.07)


def test_the_complaint_index_averages_one_over_the_premium(default_scale_con):
    """Σ premium share × index = Σ complaint share = 1 in every period where every branch wrote premium."""
    rows = default_scale_con.execute("""
        select period_type, period_start, sum(premium_share * complaint_index), count(*), min(complaint_index), max(complaint_index)
        from marts.mart_complaint_regulatory where is_complete_period and company_received > 0
        group by 1, 2 having count(complaint_index) = count(*)""").fetchall()
    assert len(rows) >= 6 + 17
    for period_type, start, weighted, branches, low, high in rows:
        assert weighted == pytest.approx(1.0, abs=1e-9), (period_type, start)
        assert branches == 20 and low < 1 < high


def test_escalations_and_regulator_timeliness_are_measured(default_scale_con, default_scale_truth):
    escalated, routed, closed, on_time = default_scale_con.execute("""
        select sum(escalated), sum(regulator_routed), sum(regulator_closed), sum(regulator_closed_within_deadline)
        from marts.mart_complaint_regulatory where period_type = 'QUARTER'""").fetchone()
    assert escalated >= 5 and routed >= 30
    share = default_scale_truth["effects"]["escalation"]["share_of_regulator_routed"]
    assert 0 < escalated / routed < 2 * share
    assert 0.5 < on_time / closed <= 1
