"""The planted key driver of the default data set is found by mart_key_drivers' estimation: the
significant strongest driver of renewal and of the later NPS (docs/definitions.md#key-drivers).
Here, beside test_default_scale.py, so the default data set is generated once per session."""

from __future__ import annotations

import json

import duckdb
import pandas as pd

from dagster_project.lib.analysis import key_drivers as kd


def test_the_planted_key_driver_is_the_significant_strongest_one(default_scale_settings):
    truth = json.loads((default_scale_settings.landing_dir / "_truth.json").read_text(encoding="utf-8"))
    planted = truth["planted_key_driver"]["stage"]
    con = duckdb.connect(str(default_scale_settings.work_db), read_only=True)
    try:
        table = kd.estimate(con.execute(f"select * from {kd.INPUT}").df())
    finally:
        con.close()
    for outcome in ("RENEWAL", "LATER_NPS"):
        for line in ("MOTOR", "ALL"):
            model = table[(table["outcome"] == outcome) & (table["line_of_business"] == line)].set_index("driver_stage")
            top = model.loc[planted]
            assert top["driver_rank"] == 1 and top["is_significant"], model[["coefficient", "p_value_holm", "driver_rank"]]
            others = model.drop(planted)
            # strongest beyond chance: its interval starts above every other driver's interval
            assert top["ci_low"] > others["ci_high"].max(), model[["coefficient", "ci_low", "ci_high"]]
            # the stage planted as no driver is not significant and not ranked
            assert not model.loc["REPORT", "is_significant"] and pd.isna(model.loc["REPORT", "driver_rank"])
            print(f"{outcome} {line}: {planted} {top['coefficient']:.3f} [{top['ci_low']:.3f}, {top['ci_high']:.3f}], "
                  f"n {top['n_observations']}, fit {top['model_fit']:.3f}; next "
                  f"{others['coefficient'].idxmax()} {others['coefficient'].max():.3f}")
