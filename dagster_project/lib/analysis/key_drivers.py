"""Key drivers: which claim stage's satisfaction moves the customer's later outcomes
(docs/definitions.md#key-drivers).

For each outcome and line of business (and all lines together, with a term per line), a regression
of the outcome on each claim stage's survey answer: renewal of the policy (logistic) and the NPS
the customer gives at the PAYMENT stage (linear, on the earlier stages). A stage enters as two
terms, answered and satisfied (a stage without a response has 0 in both), so its coefficient is
the difference between a satisfied and a dissatisfied answer at equal other answers. Reported per
driver: coefficient, 95% interval, p-value, the Holm-adjusted p-value over the model's drivers,
whether it is significant (adjusted p < 0.05), n and the model's fit. Only significant drivers get
a rank; a stage without enough satisfied and dissatisfied answers is listed, not estimated.

Input: ``intermediate.int_key_driver_observations`` (dbt). Output: ``marts.mart_key_drivers``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from dagster_project.lib.analysis.regression import RegressionError, holm, linear, logistic
from dagster_project.lib.analysis.tables import Analysis, write_table

INPUT = "intermediate.int_key_driver_observations"
OUTPUT_TABLE = "mart_key_drivers"
ALL_LINES = "ALL"
SIGNIFICANCE = 0.05
MIN_ANSWERS_EACH_WAY = 10  # satisfied and dissatisfied answers a stage needs to be estimated
EVENTS_PER_PARAMETER = 10  # logistic: the rarer outcome per parameter; linear: observations per parameter


@dataclass(frozen=True)
class Outcome:
    code: str
    model_type: str  # LOGISTIC or LINEAR
    stages: tuple[str, ...]
    effect_measure: str
    label: str


OUTCOMES = (
    Outcome("RENEWAL", "LOGISTIC", ("REPORT", "SURVEY", "ASSESSMENT", "PAYMENT"), "ODDS_RATIO",
            "renewal of the policy (续保)"),
    Outcome("LATER_NPS", "LINEAR", ("REPORT", "SURVEY", "ASSESSMENT"), "NPS_POINTS",
            "NPS given at the PAYMENT stage (later score)"),
)

# The published table: column, DuckDB type, description (the column comment BI users see).
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("outcome", "VARCHAR", "RENEWAL (policy renewed, logistic regression) or LATER_NPS (NPS at the PAYMENT stage, linear regression)."),
    ("model_type", "VARCHAR", "LOGISTIC or LINEAR."),
    ("line_of_business", "VARCHAR", "Line of business (险种) of the model, or ALL (every line, with a term per line)."),
    ("driver_stage", "VARCHAR", "The claim stage whose satisfaction is the driver (REPORT, SURVEY, ASSESSMENT, PAYMENT)."),
    ("status", "VARCHAR", "ESTIMATED; TOO_FEW_RESPONSES (the stage has fewer than 10 satisfied or 10 dissatisfied answers: not in the model); TOO_FEW_OBSERVATIONS (the model needs 10 of the rarer outcome per parameter); NOT_ESTIMABLE."),
    ("n_observations", "BIGINT", "Units in the model: policies due for renewal, or claims with a PAYMENT-stage NPS (docs/definitions.md#mart_key_drivers-n_observations)."),
    ("n_events", "BIGINT", "RENEWAL: renewed policies among them; empty for LATER_NPS (docs/definitions.md#mart_key_drivers-n_events)."),
    ("outcome_mean", "DOUBLE", "Renewal rate, or mean NPS, of the model's units (docs/definitions.md#mart_key_drivers-outcome_mean)."),
    ("n_answered", "BIGINT", "Units with a response for the driver's stage (docs/definitions.md#mart_key_drivers-n_answered)."),
    ("n_satisfied", "BIGINT", "Of those, satisfied (docs/definitions.md#mart_key_drivers-n_satisfied)."),
    ("coefficient", "DOUBLE", "Regression coefficient of a satisfied against a dissatisfied answer at the stage: log odds ratio (RENEWAL) or NPS points (LATER_NPS) (docs/definitions.md#mart_key_drivers-coefficient)."),
    ("std_error", "DOUBLE", "Standard error of the coefficient (docs/definitions.md#mart_key_drivers-std_error)."),
    ("ci_low", "DOUBLE", "Lower bound of the 95% interval of the coefficient (docs/definitions.md#mart_key_drivers-ci_low)."),
    ("ci_high", "DOUBLE", "Upper bound of the 95% interval of the coefficient (docs/definitions.md#mart_key_drivers-ci_high)."),
    ("p_value", "DOUBLE", "Two-sided p-value of the coefficient (Wald z, or t for LATER_NPS) (docs/definitions.md#mart_key_drivers-p_value)."),
    ("p_value_holm", "DOUBLE", "Holm-adjusted p-value over the model's drivers (docs/definitions.md#mart_key_drivers-p_value_holm)."),
    ("is_significant", "BOOLEAN", "p_value_holm < 0.05: the driver is shown as a driver; otherwise as not significant (docs/definitions.md#mart_key_drivers-is_significant)."),
    ("effect", "DOUBLE", "Effect on the outcome's own scale: odds ratio of renewal (exp(coefficient)) or NPS points (docs/definitions.md#mart_key_drivers-effect)."),
    ("effect_low", "DOUBLE", "Lower bound of the 95% interval of the effect (docs/definitions.md#mart_key_drivers-effect_low)."),
    ("effect_high", "DOUBLE", "Upper bound of the 95% interval of the effect (docs/definitions.md#mart_key_drivers-effect_high)."),
    ("effect_measure", "VARCHAR", "ODDS_RATIO or NPS_POINTS."),
    ("driver_rank", "BIGINT", "Rank of the driver among the model's significant drivers by coefficient (1 = strongest); empty when not significant (docs/definitions.md#mart_key_drivers-driver_rank)."),
    ("model_fit", "DOUBLE", "Model fit: McFadden's pseudo-R² (RENEWAL) or R² (LATER_NPS) (docs/definitions.md#mart_key_drivers-model_fit)."),
    ("model_fit_measure", "VARCHAR", "MCFADDEN_R2 or R2."),
    ("auc", "DOUBLE", "RENEWAL: area under the ROC curve of the fitted model (docs/definitions.md#mart_key_drivers-auc)."),
    ("log_likelihood", "DOUBLE", "Log-likelihood of the fitted model (docs/definitions.md#mart_key_drivers-log_likelihood)."),
    ("null_log_likelihood", "DOUBLE", "Log-likelihood of the intercept-only model (docs/definitions.md#mart_key_drivers-null_log_likelihood)."),
    ("converged", "BOOLEAN", "The estimation converged (docs/definitions.md#mart_key_drivers-converged)."),
)
DESCRIPTION = ("Key drivers (关键驱动因素) of renewal and of the later NPS: per outcome x line of business x claim stage, "
               "the regression coefficient of a satisfied against a dissatisfied answer at the stage, its 95% interval, "
               "p-value, Holm-adjusted significance, n and the model's fit; only significant drivers are ranked.")


def _row(outcome: Outcome, line: str, stage: str, **values) -> dict:
    row = {name: None for name, _, _ in COLUMNS}
    row.update(outcome=outcome.code, model_type=outcome.model_type, line_of_business=line, driver_stage=stage,
               effect_measure=outcome.effect_measure,
               model_fit_measure="MCFADDEN_R2" if outcome.model_type == "LOGISTIC" else "R2")
    row.update(values)
    return row


def fit_model(outcome: Outcome, line: str, data: pd.DataFrame, lines: list[str]) -> list[dict]:
    """The rows of one model: one per stage of the outcome."""
    y = data["y"].to_numpy(dtype=np.float64)
    n = len(y)
    counts = {s: (int(data[f"answered_{s.lower()}"].sum()), int(data[f"satisfied_{s.lower()}"].sum()))
              for s in outcome.stages}
    usable = [s for s in outcome.stages
              if counts[s][1] >= MIN_ANSWERS_EACH_WAY and counts[s][0] - counts[s][1] >= MIN_ANSWERS_EACH_WAY]
    base = {"n_observations": n, "outcome_mean": float(y.mean()) if n else None,
            "n_events": int(y.sum()) if outcome.model_type == "LOGISTIC" else None}

    columns, names = [np.ones(n)], ["intercept"]
    for s in usable:
        answered = data[f"answered_{s.lower()}"].to_numpy(dtype=np.float64)
        if answered.min() < 1:  # a stage every unit answered needs no answered term
            columns.append(answered)
            names.append(f"answered_{s}")
        columns.append(data[f"satisfied_{s.lower()}"].to_numpy(dtype=np.float64))
        names.append(f"satisfied_{s}")
    if line == ALL_LINES:
        for other in lines[1:]:  # the first line is the reference
            columns.append((data["line_of_business"] == other).to_numpy(dtype=np.float64))
            names.append(f"line_{other}")
    x = np.column_stack(columns)

    rarer = min(base["n_events"], n - base["n_events"]) if outcome.model_type == "LOGISTIC" else n
    if not usable or rarer < EVENTS_PER_PARAMETER * x.shape[1]:
        return [_row(outcome, line, s, status="TOO_FEW_OBSERVATIONS" if s in usable or not usable else "TOO_FEW_RESPONSES",
                     n_answered=counts[s][0], n_satisfied=counts[s][1], **base) for s in outcome.stages]
    try:
        fit = logistic(x, y) if outcome.model_type == "LOGISTIC" else linear(x, y)
    except (RegressionError, np.linalg.LinAlgError):
        return [_row(outcome, line, s, status="NOT_ESTIMABLE" if s in usable else "TOO_FEW_RESPONSES",
                     n_answered=counts[s][0], n_satisfied=counts[s][1], **base) for s in outcome.stages]

    model = {**base, "model_fit": fit.fit_r2, "auc": fit.auc, "log_likelihood": fit.log_likelihood,
             "null_log_likelihood": fit.null_log_likelihood, "converged": fit.converged}
    index = {s: names.index(f"satisfied_{s}") for s in usable}
    adjusted = dict(zip(usable, holm([float(fit.p_value[index[s]]) for s in usable])))
    significant = [s for s in usable if adjusted[s] < SIGNIFICANCE and fit.converged]
    ranked = sorted(significant, key=lambda s: (-float(fit.coef[index[s]]), s))
    odds = outcome.model_type == "LOGISTIC"
    rows = []
    for s in outcome.stages:
        if s not in usable:
            rows.append(_row(outcome, line, s, status="TOO_FEW_RESPONSES", n_answered=counts[s][0],
                             n_satisfied=counts[s][1], **model))
            continue
        i = index[s]
        coef, low, high = float(fit.coef[i]), float(fit.ci_low[i]), float(fit.ci_high[i])
        rows.append(_row(
            outcome, line, s, status="ESTIMATED", n_answered=counts[s][0], n_satisfied=counts[s][1],
            coefficient=coef, std_error=float(fit.se[i]), ci_low=low, ci_high=high,
            p_value=float(fit.p_value[i]), p_value_holm=adjusted[s], is_significant=s in significant,
            effect=float(np.exp(coef)) if odds else coef, effect_low=float(np.exp(low)) if odds else low,
            effect_high=float(np.exp(high)) if odds else high,
            driver_rank=ranked.index(s) + 1 if s in ranked else None, **model))
    return rows


def estimate(observations: pd.DataFrame) -> pd.DataFrame:
    """Every model's rows, in a stable order (outcome, line, stage)."""
    rows: list[dict] = []
    for outcome in OUTCOMES:
        data = observations[observations["outcome"] == outcome.code].sort_values("unit_id", kind="stable")
        lines = sorted(data["line_of_business"].unique().tolist())
        for line in [*lines, ALL_LINES]:
            part = data if line == ALL_LINES else data[data["line_of_business"] == line]
            rows.extend(fit_model(outcome, line, part.reset_index(drop=True), lines))
    return pd.DataFrame(rows, columns=[name for name, _, _ in COLUMNS])


def build(con: duckdb.DuckDBPyConnection, scratch_dir: Path | None = None) -> dict[str, int]:
    """Estimate every model from the observations on ``con`` and write the table there; returns
    the counts the asset's materialization shows."""
    table = estimate(con.execute(f"select * from {INPUT}").df())
    rows = write_table(con, OUTPUT_TABLE, table, COLUMNS, DESCRIPTION)
    significant = table[table["is_significant"].fillna(False).astype(bool)]
    return {"rows": rows, "models": int(table[["outcome", "line_of_business"]].drop_duplicates().shape[0]),
            "significant_drivers": int(len(significant))}


ANALYSIS = Analysis(table=OUTPUT_TABLE, input_model=INPUT, description=DESCRIPTION, build=build)
