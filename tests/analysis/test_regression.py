"""The regressions behind mart_key_drivers against results known in closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dagster_project.lib.analysis.regression import RegressionError, auc, holm, linear, logistic


def test_logistic_on_one_binary_covariate_is_the_log_odds_ratio_of_the_two_by_two_table():
    # a = exposed with event, b = exposed without, c = unexposed with, d = unexposed without: the
    # maximum-likelihood slope is log(ad/bc) with standard error sqrt(1/a + 1/b + 1/c + 1/d), and
    # the intercept is log(c/d) (Agresti, Categorical Data Analysis, 2nd ed., 3.1 and 5.1)
    a, b, c, d = 120, 40, 300, 260
    x1 = np.r_[np.ones(a + b), np.zeros(c + d)]
    y = np.r_[np.ones(a), np.zeros(b), np.ones(c), np.zeros(d)]
    fit = logistic(np.column_stack([np.ones(len(y)), x1]), y)
    assert fit.converged
    assert fit.coef[1] == pytest.approx(math.log(a * d / (b * c)), abs=1e-9)
    assert fit.coef[0] == pytest.approx(math.log(c / d), abs=1e-9)
    assert fit.se[1] == pytest.approx(math.sqrt(1 / a + 1 / b + 1 / c + 1 / d), rel=1e-7)
    assert fit.ci_low[1] == pytest.approx(fit.coef[1] - 1.959963984540054 * fit.se[1])
    # the log-likelihood of the saturated 2x2 model and McFadden's R² from it
    ll = a * math.log(a / (a + b)) + b * math.log(b / (a + b)) + c * math.log(c / (c + d)) + d * math.log(d / (c + d))
    assert fit.log_likelihood == pytest.approx(ll, rel=1e-10)
    p = (a + c) / len(y)
    assert fit.null_log_likelihood == pytest.approx(len(y) * (p * math.log(p) + (1 - p) * math.log(1 - p)))
    assert fit.fit_r2 == pytest.approx(1 - ll / fit.null_log_likelihood)


def test_logistic_recovers_simulated_coefficients_and_solves_the_score_equations():
    rng = np.random.default_rng(3)
    n = 20_000
    x = np.column_stack([np.ones(n), rng.integers(0, 2, n), rng.standard_normal(n)])
    beta = np.array([-0.4, 0.9, -0.5])
    y = (rng.random(n) < 1 / (1 + np.exp(-(x @ beta)))).astype(float)
    fit = logistic(x, y)
    p = 1 / (1 + np.exp(-(x @ fit.coef)))
    assert np.abs(x.T @ (y - p)).max() < 1e-6  # the maximum-likelihood equations hold
    assert np.all(np.abs(fit.coef - beta) < 3 * fit.se)
    assert 0.5 < fit.auc < 1


def test_logistic_refuses_what_it_cannot_estimate():
    x = np.column_stack([np.ones(50), np.r_[np.ones(25), np.zeros(25)]])
    with pytest.raises(RegressionError):
        logistic(x, np.ones(50))  # no variation
    with pytest.raises(RegressionError):
        logistic(np.column_stack([x, x[:, 1]]), np.r_[np.ones(10), np.zeros(40)])  # singular


def test_linear_matches_the_closed_form_of_a_two_group_mean_difference():
    # y on an intercept and a group dummy: the slope is the difference of the group means and its
    # standard error the pooled two-sample t-test's
    rng = np.random.default_rng(5)
    g1, g0 = rng.normal(8.5, 1.5, 70), rng.normal(7.0, 2.0, 130)
    y = np.r_[g1, g0]
    x = np.column_stack([np.ones(len(y)), np.r_[np.ones(70), np.zeros(130)]])
    fit = linear(x, y)
    assert fit.coef[1] == pytest.approx(g1.mean() - g0.mean(), abs=1e-10)
    pooled = ((len(g1) - 1) * g1.var(ddof=1) + (len(g0) - 1) * g0.var(ddof=1)) / (len(y) - 2)
    assert fit.se[1] == pytest.approx(math.sqrt(pooled * (1 / 70 + 1 / 130)), rel=1e-10)
    assert fit.df_resid == len(y) - 2
    from scipy import stats
    assert fit.p_value[1] == pytest.approx(stats.ttest_ind(g1, g0).pvalue, rel=1e-9)
    rss = ((y - x @ fit.coef) ** 2).sum()
    assert fit.fit_r2 == pytest.approx(1 - rss / ((y - y.mean()) ** 2).sum())


def test_holm_adjustment():
    # Holm (1979): sorted p 0.01, 0.02, 0.04 of m = 3 -> 0.03, 0.04, 0.04 (monotone), in input order
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_auc_counts_ties_half():
    assert auc(np.array([1, 0, 1, 0]), np.array([0.9, 0.1, 0.5, 0.5])) == pytest.approx(0.875)
