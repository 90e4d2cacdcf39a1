"""The Makefile's `make run` data set is the generator's documented default."""

from __future__ import annotations

import re
from pathlib import Path

from dagster_project.tools.sample_data import params as P


def test_makefile_defaults_are_the_generator_defaults():
    text = (Path(__file__).parents[2] / "Makefile").read_text(encoding="utf-8")
    values = dict(re.findall(r"^(SCALE|DAYS|START|SEED)\s*\?=\s*(\S+)", text, flags=re.M))
    assert float(values["SCALE"]) == P.DEFAULT_SCALE
    assert int(values["DAYS"]) == P.DEFAULT_DAYS
    assert values["START"] == P.DEFAULT_START
    assert int(values["SEED"]) == P.DEFAULT_SEED


def test_regulator_routed_share_follows_the_two_calibrated_rates():
    weights = dict(zip(P.COMPLAINT_CHANNELS, P.complaint_channel_weights()))
    assert abs(sum(weights.values()) - 1) < 1e-12
    assert weights["REGULATOR_12378"] == P.REGULATOR_ROUTED_PER_10K_POLICY_YEARS / P.COMPLAINTS_PER_10K_POLICY_YEARS
    # a quarter of regulator-routed complaints per 10k policies in force lies between the cited
    # medians (0.26 in 2023 Q1, 0.43 in 2020 Q2)
    assert 0.26 <= P.REGULATOR_ROUTED_PER_10K_POLICY_YEARS / 4 <= 0.43
