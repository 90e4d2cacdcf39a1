"""mart_key_drivers: the planted strongest driver is found, significant, and ranked first; drivers
that are not significant are never ranked (docs/definitions.md#key-drivers)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dagster_project.lib.analysis import key_drivers as kd


def synthetic(n: int, beta: dict[str, float], seed: int = 1, line: str = "MOTOR", answer_rate: float = 0.4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = {"outcome": "RENEWAL", "unit_id": [f"P{line}{i:07d}" for i in range(n)], "line_of_business": line}
    eta = np.full(n, 0.7)
    for stage in ("REPORT", "SURVEY", "ASSESSMENT", "PAYMENT"):
        sat = rng.random(n) < 0.8
        answered = rng.random(n) < answer_rate
        eta += beta.get(stage, 0.0) * (sat - 0.8)
        data[f"answered_{stage.lower()}"] = answered.astype(int)
        data[f"satisfied_{stage.lower()}"] = (answered & sat).astype(int)
    data["y"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    return pd.DataFrame(data)


def test_the_strongest_driver_ranks_first_and_a_null_driver_is_not_ranked():
    obs = synthetic(40_000, {"SURVEY": 0.3, "ASSESSMENT": 1.0, "PAYMENT": 0.5})
    table = kd.estimate(obs)
    motor = table[(table["outcome"] == "RENEWAL") & (table["line_of_business"] == "MOTOR")].set_index("driver_stage")
    assert motor.loc["ASSESSMENT", "driver_rank"] == 1
    assert motor.loc["PAYMENT", "driver_rank"] == 2
    assert not motor.loc["REPORT", "is_significant"] and pd.isna(motor.loc["REPORT", "driver_rank"])
    assert motor.loc["ASSESSMENT", "ci_low"] < 1.0 < motor.loc["ASSESSMENT", "ci_high"]
    assert motor.loc["ASSESSMENT", "effect"] == pytest.approx(np.exp(motor.loc["ASSESSMENT", "coefficient"]))
    assert (motor["n_observations"] == 40_000).all() and (motor["status"] == "ESTIMATED").all()
    assert 0 < motor["model_fit"].iloc[0] < 1 and 0.5 < motor["auc"].iloc[0] < 1
    # a model of all lines has the same drivers (one line here)
    assert (table[(table["outcome"] == "RENEWAL") & (table["line_of_business"] == "ALL")]["driver_rank"].dropna() > 0).all()


def test_too_few_answers_or_observations_are_listed_not_estimated():
    obs = synthetic(3_000, {"ASSESSMENT": 1.0}, answer_rate=0.4)
    obs.loc[:, "satisfied_report"] = obs["answered_report"]  # nobody dissatisfied at REPORT
    small = synthetic(60, {"ASSESSMENT": 1.0}, seed=2, line="HOME")
    table = kd.estimate(pd.concat([obs, small]))
    motor = table[(table["line_of_business"] == "MOTOR") & (table["outcome"] == "RENEWAL")].set_index("driver_stage")
    assert motor.loc["REPORT", "status"] == "TOO_FEW_RESPONSES" and pd.isna(motor.loc["REPORT", "coefficient"])
    assert motor.loc["ASSESSMENT", "status"] == "ESTIMATED"
    home = table[table["line_of_business"] == "HOME"]
    assert set(home["status"]) <= {"TOO_FEW_OBSERVATIONS", "TOO_FEW_RESPONSES"}
    assert home["coefficient"].isna().all() and home["driver_rank"].isna().all()


def test_the_estimation_is_deterministic_whatever_the_row_order():
    obs = synthetic(5_000, {"ASSESSMENT": 1.0, "SURVEY": 0.4})
    a = kd.estimate(obs)
    b = kd.estimate(obs.sample(frac=1.0, random_state=3))
    pd.testing.assert_frame_equal(a, b)
