"""The report's topic section, driver chart and funnel plots (lib/report/voice.py), from marts made
here: only flagged cells are named, marks differ by shape (not colour), drivers that are not
significant are never ranked, and text from the data is escaped."""

from __future__ import annotations

import re
from datetime import date

import duckdb
import pandas as pd
import pytest

from dagster_project.lib.report.html import branch_text, esc
from dagster_project.lib.report.voice import read_voice, render_voice_sections

MONTH = date(2025, 6, 1)


def _limits(n: int, centre: float, half: float) -> tuple[float, float]:
    return centre - half / n ** 0.5, centre + half / n ** 0.5


@pytest.fixture()
def con():
    c = duckdb.connect()
    c.execute("create schema marts")
    rows = []
    for i, branch in enumerate(["JL", "LN", "SH", "BJ", "GD"]):
        for stage in ("REPORT", "SURVEY"):
            n = 50 * (i + 1)
            csat = 0.5 if (branch, stage) == ("JL", "SURVEY") else 0.85
            low95, high95 = _limits(n, 0.85, 0.7)
            low998, high998 = _limits(n, 0.85, 1.1)
            flagged = (branch, stage) == ("JL", "SURVEY")
            # SH REPORT is outside the 95% limits but not flagged: drawn, not named
            if (branch, stage) == ("SH", "REPORT"):
                csat = low95 - 0.01
            rows.append((branch, stage, MONTH, n, csat, 0.85, low95, high95, low998, high998, flagged,
                         "BELOW" if flagged else None, 0.001 if flagged else 0.4))
    c.register("s", pd.DataFrame(rows, columns=[
        "branch_code", "stage", "month", "responses", "csat", "company_csat", "limit_95_low", "limit_95_high",
        "limit_998_low", "limit_998_high", "flagged", "flag_direction", "q_value"]))
    c.execute("create table marts.mart_satisfaction_control_limits as select * from s")
    c.register("t", pd.DataFrame([
        ("JL", "SURVEY", MONTH, "SURVEYOR_LATE", "查勘慢/迟到", "Late surveyor <b>", 40, 100, 5, 60, 45, -0.6, 38.0),
        ("LN", "SURVEY", MONTH, "SURVEYOR_LATE", "查勘慢/迟到", "Late surveyor <b>", 5, 100, 2, 95, 80, -0.5, 5.0),
        ("JL", "SURVEY", MONTH, "PRAISE_SPEED", "速度快", "Fast", 0, 100, 0, 100, 50, None, 0.0),
    ], columns=["branch_code", "stage", "month", "topic_code", "topic_label_zh", "topic_label_en", "mentions",
                "commented", "satisfied_mentioning", "responses_not_mentioning", "satisfied_not_mentioning",
                "sentiment_score_sum", "sentiment_scored"]))
    c.execute("create table marts.mart_verbatim_topics as select * from t")
    c.register("e", pd.DataFrame([("SURVEY", MONTH, "<script>alert(1)</script>", 9, 120, 0.075, 0.01, True, 1)],
                                 columns=["stage", "month", "term", "comments_with_term", "comments", "share",
                                          "baseline_share", "is_emerging", "emerging_rank"]))
    c.execute("create table marts.mart_emerging_terms as select * from e")
    c.register("d", pd.DataFrame([
        ("RENEWAL", "ALL", "ASSESSMENT", "ESTIMATED", 0.9, 0.7, 1.1, 2.46, 2.0, 3.0, 1e-9, True, 1, 5000, 0.03),
        ("RENEWAL", "ALL", "REPORT", "ESTIMATED", 0.05, -0.2, 0.3, 1.05, 0.82, 1.35, 0.7, False, None, 5000, 0.03),
        ("RENEWAL", "ALL", "PAYMENT", "TOO_FEW_RESPONSES", None, None, None, None, None, None, None, None, None, 5000, 0.03),
    ], columns=["outcome", "line_of_business", "driver_stage", "status", "coefficient", "ci_low", "ci_high", "effect",
                "effect_low", "effect_high", "p_value_holm", "is_significant", "driver_rank", "n_observations",
                "model_fit"]))
    c.execute("create table marts.mart_key_drivers as select * from d")
    yield c
    c.close()


def test_the_sections_name_only_flagged_cells_and_escape_the_data(con):
    voice = read_voice(con, MONTH)
    assert voice.missing == ["mart_complaint_control_limits"]
    html = "".join(render_voice_sections(voice, esc=esc, branch_text=branch_text))
    assert "<script>" not in html and "&lt;script&gt;" in html and "Late surveyor &lt;b&gt;" in html
    named = html.split("Outside the adjusted limits (flagged):")[1].split("</ul>")[0]
    assert named.count("<li>") == 1 and branch_text("JL") in named and "below" in named
    assert branch_text("SH") not in named  # outside the 95% band but not flagged
    # readable without colour: one filled triangle (the flagged cell), hollow circles for the rest, dashed 95% limits
    assert html.count("<polygon") == 1 and html.count('r="3.5" fill="#fff"') == 9
    assert 'stroke-dasharray="5 3"' in html
    assert not re.search(r'fill="#(?!fff|000)', html), "a mark whose meaning would depend on colour"


def test_the_topic_table_and_the_driver_chart(con):
    html = "".join(render_voice_sections(read_voice(con, MONTH), esc=esc, branch_text=branch_text))
    topics = html.split("What customers wrote")[1].split("</table>")[0]
    assert "45 / 200" in topics and "22.5%" in topics  # pooled over the branches: 45 of 200 comments
    assert "速度快" not in topics  # never mentioned: not listed
    drivers = html.split("What drives renewal")[1]
    assert "#1 2.46" in drivers and "n.s. 1.05" in drivers and "#2" not in drivers
    assert "not estimated: TOO_FEW_RESPONSES" in drivers


def test_a_file_without_the_marts_renders_nothing_and_says_so():
    c = duckdb.connect()
    c.execute("create schema marts")
    voice = read_voice(c, MONTH)
    assert len(voice.missing) == 5
    assert render_voice_sections(voice, esc=esc, branch_text=branch_text) == []
