"""Control limits that don't cry wolf (docs/definitions.md#control-limits).

The null tests feed the marts' own compiled SQL with simulated grids — 30 grids of 20 branches (the
generator's book sizes) × 5 stages × 12 months, with the generator's ordinary between-branch spread
and no planted effect — and count the cells flagged. Simulated grids rather than generated data
sets: one null data set at the default scale takes four minutes to generate and build, a simulated
grid a fraction of a second, and the SQL under test is the same. Each grid is one "year"; its
months are separate false-discovery families.
"""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from dagster_project.lib.reference import BRANCHES, STAGE_CODES
from dagster_project.lib.report.metrics import wilson_interval
from dagster_project.tools.sample_data import params as P
from tests.transform.compiled_sql import compiled_sql, run_compiled

GRIDS, MONTHS = 30, 12
FDR_Q = 0.05
WEIGHTS = np.array([b.size_weight for b in BRANCHES]) / sum(b.size_weight for b in BRANCHES)
SLOW = 0  # index of the planted branch (JL, the largest) in simulated grids with an effect


def satisfaction_cells(mean_responses: float, seed0: int, planted: bool = False) -> pd.DataFrame:
    """Responses per branch x stage x month ~ Poisson(book share x 20 x mean); satisfied ~
    Binomial with the stage target and a persistent branch x stage effect on the logit scale
    (sigma = params.BRANCH_STAGE_SIGMA, centred on the book as the generator does)."""
    rows = []
    for grid in range(GRIDS):
        rng = np.random.default_rng(seed0 + grid)
        effect = P.BRANCH_STAGE_SIGMA * rng.standard_normal((len(BRANCHES), len(STAGE_CODES)))
        effect -= WEIGHTS @ effect
        for m in range(MONTHS):
            month = pd.Timestamp(2000 + grid, m + 1, 1)
            for b, branch in enumerate(BRANCHES):
                for s, stage in enumerate(STAGE_CODES):
                    n = int(rng.poisson(mean_responses * WEIGHTS[b] * len(BRANCHES)))
                    if n == 0:
                        continue
                    logit = P.logit(P.STAGE_TARGETS[stage]) + effect[b, s]
                    if planted and b == SLOW and stage == "SURVEY":
                        logit = P.logit(P.SLOW_SURVEY_SATISFACTION)
                    rows.append((branch.code, stage, month, n, int(rng.binomial(n, 1 / (1 + math.exp(-logit))))))
    return pd.DataFrame(rows, columns=["branch_code", "stage", "month", "n", "x"])


def run_satisfaction(settings, cells: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """mart_stage_satisfaction (the old flag) and mart_satisfaction_control_limits on the cells."""
    con = duckdb.connect()
    con.execute("attach ':memory:' as work")
    con.execute("create schema work.intermediate")
    con.register("cells", cells)
    con.execute("""
        create table work.intermediate.int_surveys__attributed as
        select branch_code || stage || cast(month as varchar) || cast(i as varchar) as response_id, stage,
               month as responded_month, i < x as is_satisfied, case when i < x then 5 else 2 end as score,
               branch_code
        from cells, range(n) as t(i)""")
    satisfaction = run_compiled(compiled_sql(settings, "mart_stage_satisfaction"), {}, con)
    limits = run_compiled(compiled_sql(settings, "mart_satisfaction_control_limits"),
                          {"marts.mart_stage_satisfaction": satisfaction}, con)
    return satisfaction, limits


def months_with_a_flag(limits: pd.DataFrame) -> tuple[int, int]:
    by_month = limits.groupby("month")["flagged"].any()
    return int(by_month.sum()), len(by_month)


@pytest.mark.parametrize("mean_responses", [8, 73])  # the tiny data set's and the default scale's mean
def test_on_null_grids_the_flags_stay_within_the_false_discovery_rate(built_settings, mean_responses):
    satisfaction, limits = run_satisfaction(built_settings, satisfaction_cells(mean_responses, seed0=1000))
    flagged_months, months = months_with_a_flag(limits)
    # With no special cause, every flag is false: the false-discovery rate of a month is the
    # chance that it flags anything, which Benjamini-Hochberg keeps at 5%.
    low, _ = wilson_interval(flagged_months, months)
    assert low <= FDR_Q, f"{flagged_months} of {months} null months flag something"
    old = int(satisfaction["significantly_below"].sum())
    new = int(limits["flagged"].sum())
    print(f"mean {mean_responses} responses: {len(limits)} cells, old flag {old}, new flags {new}, "
          f"months with a flag {flagged_months}/{months}, outside 99.8% {int(limits['outside_998'].sum())}, "
          f"unadjusted |z| > 3.09 {int((limits['z_score'].abs() > 3.09).sum())}")
    per_grid = pd.DataFrame({"old": satisfaction.groupby(satisfaction["month"].dt.year)["significantly_below"].sum(),
                             "new": limits.groupby(limits["month"].dt.year)["flagged"].sum()}).fillna(0)
    print(f"  per grid of 12 months x 100 cells (seeds {1000}-{1000 + GRIDS - 1}): old flag min {per_grid['old'].min():.0f}, "
          f"median {per_grid['old'].median():.0f}, max {per_grid['old'].max():.0f}; new min {per_grid['new'].min():.0f}, "
          f"median {per_grid['new'].median():.0f}, max {per_grid['new'].max():.0f}")
    # the old per-cell flag, by contrast, fires on hundreds of cells
    assert old >= 20 * max(new, 1), (old, new)
    # and the limits are where they say: outside the 99.8% band means |z_adjusted| above its multiplier
    assert (limits["outside_998"] <= limits["outside_95"]).all()
    tested = limits[limits["limit_95_low"].notna()]
    drawn_outside = (tested["csat"] < tested["limit_95_low"] - 1e-12) | (tested["csat"] > tested["limit_95_high"] + 1e-12)
    on_a_limit = ((tested["csat"] - tested["limit_95_low"]).abs() < 1e-9) | ((tested["csat"] - tested["limit_95_high"]).abs() < 1e-9)
    assert ((drawn_outside == tested["outside_95"]) | on_a_limit).all()


def test_a_planted_branch_is_flagged_and_the_others_are_not(built_settings):
    _, limits = run_satisfaction(built_settings, satisfaction_cells(73, seed0=2000, planted=True))
    planted = limits[(limits["branch_code"] == BRANCHES[SLOW].code) & (limits["stage"] == "SURVEY")]
    assert planted["flagged"].mean() >= 0.6, f"flagged in {planted['flagged'].sum()} of {len(planted)} months"
    assert (planted.loc[planted["flagged"], "flag_direction"] == "BELOW").all()
    others = limits.drop(planted.index)
    flagged_months, months = months_with_a_flag(others)
    assert flagged_months <= 0.1 * months, f"{flagged_months} of {months} months flag an unplanted cell"


def complaint_cells(seed0: int) -> pd.DataFrame:
    """Policies in force per branch (the default book's shares of 250k) and complaints received in
    the month ~ Poisson(50 per 10k policy-years x a persistent branch effect, sigma 0.2)."""
    rows = []
    for grid in range(GRIDS):
        rng = np.random.default_rng(seed0 + grid)
        effect = np.exp(P.BRANCH_FREQ_SIGMA * rng.standard_normal(len(BRANCHES)))
        effect /= WEIGHTS @ effect
        for m in range(MONTHS):
            for b, branch in enumerate(BRANCHES):
                in_force = int(250_000 * WEIGHTS[b] * rng.uniform(0.97, 1.03))
                lam = in_force * P.COMPLAINTS_PER_10K_POLICY_YEARS / 10_000 / 12 * effect[b]
                rows.append((branch.code, pd.Timestamp(2000 + grid, m + 1, 1), int(rng.poisson(lam)), in_force))
    return pd.DataFrame(rows, columns=["branch_code", "month", "received", "policies_in_force"])


def test_complaint_rate_limits_on_null_grids(built_settings):
    limits = run_compiled(compiled_sql(built_settings, "mart_complaint_control_limits"),
                          {"marts.mart_complaints": complaint_cells(seed0=3000)})
    flagged_months, months = months_with_a_flag(limits)
    low, _ = wilson_interval(flagged_months, months)
    assert low <= FDR_Q, f"{flagged_months} of {months} null months flag a branch"
    print(f"complaints: {len(limits)} branch-months, flagged {int(limits['flagged'].sum())}, months with a flag "
          f"{flagged_months}/{months}, outside 95% {int(limits['outside_95'].sum())}, outside 99.8% "
          f"{int(limits['outside_998'].sum())}, unadjusted |z| > 1.96 {int((limits['z_score'].abs() > 1.96).sum())}")
    assert (limits["limit_998_low"] <= limits["limit_95_low"]).all()
    assert (limits["limit_95_high"] <= limits["limit_998_high"]).all()
    assert (limits["limit_95_low"] <= limits["company_per_10k_policies"]).all()


def test_a_branch_with_four_times_the_complaints_is_flagged(built_settings):
    cells = complaint_cells(seed0=4000)
    heavy = cells["branch_code"] == BRANCHES[SLOW].code
    rng = np.random.default_rng(9)
    cells.loc[heavy, "received"] = rng.poisson(cells.loc[heavy, "received"].clip(lower=1) * 4.0)
    limits = run_compiled(compiled_sql(built_settings, "mart_complaint_control_limits"), {"marts.mart_complaints": cells})
    planted = limits[limits["branch_code"] == BRANCHES[SLOW].code]
    # about 13 complaints a month expected, 52 drawn: flagged in more than half of the months
    # (measured 62%; three times the complaints: 35%). The largest branch that far off also drags
    # the company rate up, so some others look low: they stay a small share of the flags.
    assert planted["flagged"].mean() >= 0.5, planted["flagged"].mean()
    others = limits[(limits["branch_code"] != BRANCHES[SLOW].code) & limits["flagged"]]
    assert len(others) <= 0.15 * (len(others) + planted["flagged"].sum())
    assert (planted.loc[planted["flagged"], "flag_direction"] == "ABOVE").all()


def reference_limits(cells: pd.DataFrame) -> pd.DataFrame:
    """docs/definitions.md#control-limits recomputed in numpy/scipy, independently of the SQL."""
    out = []
    cells = cells.copy()
    cells["y"] = np.arcsin(np.sqrt((cells["satisfied"] + 0.375) / (cells["responses"] + 0.75)))
    cells["se"] = 1 / (2 * np.sqrt(cells["responses"] + 0.5))
    cells["y0"] = np.arcsin(np.sqrt(cells["company_csat"]))
    k = (1 - 0.2) - 2 * stats.norm.ppf(0.9) * stats.norm.pdf(stats.norm.ppf(0.9)) + 0.2 * stats.norm.ppf(0.9) ** 2
    for _, f in cells.groupby(["stage", "month"]):
        zc = (f["y"] - np.median(f["y"])) / f["se"]
        zw = np.clip(zc, np.quantile(zc, 0.1), np.quantile(zc, 0.9))
        phi, units, w = float(np.mean(zw ** 2) / k), len(f), 1 / f["se"] ** 2
        tau2 = max(0.0, (units * phi - (units - 1)) / (w.sum() - (w ** 2).sum() / w.sum()))
        za = (f["y"] - f["y0"]) / np.sqrt(f["se"] ** 2 + tau2)
        nu = units - 2
        z_normal = za.abs() * (1 - 1 / (4 * nu)) / np.sqrt(1 + za ** 2 / (2 * nu))
        m95 = 1.959963984540054 / math.sqrt((1 - 1 / (4 * nu)) ** 2 - 1.959963984540054 ** 2 / (2 * nu))
        y_low = np.clip(f["y0"] - m95 * np.sqrt(f["se"] ** 2 + tau2), 0, math.pi / 2)
        low95 = (((f["responses"] + 0.75) * np.sin(y_low) ** 2 - 0.375) / f["responses"]).clip(0, 1)
        out.append(f.assign(phi=phi, tau2=tau2, za=za, p=2 * stats.norm.sf(z_normal), exact_t_p=2 * stats.t.sf(za.abs(), nu),
                            low95=low95))
    ref = pd.concat(out)
    q = []
    for _, f in ref.groupby("month"):
        q.append(pd.Series(stats.false_discovery_control(f["p"].to_numpy(), method="bh"), index=f.index))
    return ref.assign(q=pd.concat(q))


def test_the_sql_matches_an_independent_recomputation(built_settings):
    cells = satisfaction_cells(73, seed0=5000)
    cells = cells[cells["month"].dt.year == 2000]  # one grid, 12 months
    company = cells.groupby(["stage", "month"]).agg(sx=("x", "sum"), sn=("n", "sum")).reset_index()
    cells = cells.merge(company, on=["stage", "month"])
    mart = pd.DataFrame({"branch_code": cells["branch_code"], "stage": cells["stage"], "month": cells["month"],
                         "responses": cells["n"], "satisfied": cells["x"], "company_csat": cells["sx"] / cells["sn"]})
    sql = run_compiled(compiled_sql(built_settings, "mart_satisfaction_control_limits"),
                       {"marts.mart_stage_satisfaction": mart})
    ref = reference_limits(mart)
    both = sql.merge(ref, on=["branch_code", "stage", "month"], suffixes=("", "_ref"))
    assert len(both) == len(mart)
    assert np.allclose(both["overdispersion_phi"], both["phi"], rtol=1e-9)
    assert np.allclose(both["between_branch_variance"], both["tau2"], rtol=1e-9, atol=1e-15)
    assert np.allclose(both["z_adjusted"], both["za"], rtol=1e-9)
    # A&S 26.2.17: |error| < 7.5e-8 in one tail, so < 1.5e-7 in the two-sided p; Benjamini-Hochberg
    # multiplies a p-value by m/j <= m (the month's 100 cells), so q's error is below 100 x that.
    assert np.allclose(both["p_value"], both["p"], rtol=0, atol=1.5e-7)
    assert np.allclose(both["q_value"], both["q"], rtol=0, atol=1.5e-5)
    assert np.allclose(both["limit_95_low"], both["low95"], rtol=1e-9)
    # the t conversion errs on the safe side of the exact t test
    assert (both["p_value"] >= both["exact_t_p"] * 0.999).all()
    assert (both.loc[both["exact_t_p"] > 1e-3, "p_value"] <= both.loc[both["exact_t_p"] > 1e-3, "exact_t_p"] * 1.3).all()
