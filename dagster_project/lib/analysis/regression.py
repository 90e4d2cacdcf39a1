"""Logistic and linear regression with standard errors, in numpy (docs/definitions.md#key-drivers).

``logistic`` fits by iteratively reweighted least squares (Newton-Raphson on the log-likelihood,
with step halving when a step does not raise it); standard errors from the inverse Fisher
information at the estimate, Wald z tests. ``linear`` is ordinary least squares with the classical
standard errors and t tests. Both are deterministic for the same rows in the same order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


class RegressionError(ValueError):
    """The model cannot be estimated (singular design, no variation in the outcome)."""


@dataclass(frozen=True)
class Fit:
    coef: np.ndarray
    se: np.ndarray
    p_value: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    n: int
    log_likelihood: float
    null_log_likelihood: float
    fit_r2: float  # McFadden's pseudo-R² (logistic) or R² (linear)
    iterations: int
    converged: bool
    auc: float | None = None  # logistic: the area under the ROC curve (concordance)
    df_resid: int | None = None


def _check(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y):
        raise RegressionError(f"design {x.shape} and outcome {y.shape} do not match")
    if len(y) <= x.shape[1]:
        raise RegressionError(f"{len(y)} observations for {x.shape[1]} parameters")
    if np.linalg.matrix_rank(x) < x.shape[1]:
        raise RegressionError("the design matrix is singular (a column is constant or a combination of others)")
    return x, y


def _log_likelihood(x: np.ndarray, y: np.ndarray, beta: np.ndarray) -> float:
    eta = x @ beta
    # log(1 + e^eta) without overflow
    return float(np.sum(y * eta - np.logaddexp(0.0, eta)))


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """Probability that a random positive outranks a random negative (ties count half)."""
    from scipy import stats  # deferred, as in emerging_terms: only the analyses need scipy

    ranks = stats.rankdata(score)
    pos = y == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def logistic(x: np.ndarray, y: np.ndarray, *, max_iter: int = 100, tol: float = 1e-10, z: float = 1.959963984540054) -> Fit:
    """Maximum-likelihood logistic regression of y (0/1) on the columns of x (include an intercept)."""
    from scipy import stats  # deferred, as in auc

    x, y = _check(x, y)
    if not set(np.unique(y)) <= {0.0, 1.0}:
        raise RegressionError("a logistic outcome is 0 or 1")
    mean = y.mean()
    if mean in (0.0, 1.0):
        raise RegressionError("the outcome does not vary")
    beta = np.zeros(x.shape[1])
    ll = _log_likelihood(x, y, beta)
    converged, it = False, 0
    for it in range(1, max_iter + 1):
        p = 1.0 / (1.0 + np.exp(-(x @ beta)))
        w = p * (1.0 - p)
        info = x.T @ (x * w[:, None])
        step = np.linalg.solve(info, x.T @ (y - p))
        new_beta, new_ll = beta + step, _log_likelihood(x, y, beta + step)
        halvings = 0
        while new_ll < ll - 1e-12 and halvings < 30:  # a Newton step that overshoots: halve it
            step /= 2.0
            new_beta, new_ll = beta + step, _log_likelihood(x, y, beta + step)
            halvings += 1
        beta, improvement, ll = new_beta, new_ll - ll, new_ll
        if abs(improvement) < tol * (abs(ll) + tol) and np.max(np.abs(step)) < 1e-8:
            converged = True
            break
    p = 1.0 / (1.0 + np.exp(-(x @ beta)))
    info = x.T @ (x * (p * (1.0 - p))[:, None])
    se = np.sqrt(np.diag(np.linalg.inv(info)))
    zs = beta / se
    null_ll = float(len(y) * (mean * math.log(mean) + (1 - mean) * math.log(1 - mean)))
    return Fit(coef=beta, se=se, p_value=2.0 * stats.norm.sf(np.abs(zs)), ci_low=beta - z * se,
               ci_high=beta + z * se, n=len(y), log_likelihood=ll, null_log_likelihood=null_ll,
               fit_r2=1.0 - ll / null_ll, iterations=it, converged=converged, auc=auc(y, x @ beta))


def linear(x: np.ndarray, y: np.ndarray, *, level: float = 0.95) -> Fit:
    """Ordinary least squares of y on the columns of x (include an intercept)."""
    from scipy import stats  # deferred, as in auc

    x, y = _check(x, y)
    n, k = x.shape
    xtx_inv = np.linalg.inv(x.T @ x)
    beta = xtx_inv @ (x.T @ y)
    resid = y - x @ beta
    rss = float(resid @ resid)
    tss = float(((y - y.mean()) ** 2).sum())
    if tss == 0:
        raise RegressionError("the outcome does not vary")
    df = n - k
    sigma2 = rss / df
    se = np.sqrt(np.diag(xtx_inv) * sigma2)
    t = beta / se
    q = stats.t.ppf(0.5 + level / 2, df)
    ll = float(-n / 2 * (math.log(2 * math.pi * rss / n) + 1))
    null_ll = float(-n / 2 * (math.log(2 * math.pi * tss / n) + 1))
    return Fit(coef=beta, se=se, p_value=2.0 * stats.t.sf(np.abs(t), df), ci_low=beta - q * se, ci_high=beta + q * se,
               n=n, log_likelihood=ll, null_log_likelihood=null_ll, fit_r2=1.0 - rss / tss, iterations=1,
               converged=True, df_resid=df)


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment (family-wise error), in the input order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted
