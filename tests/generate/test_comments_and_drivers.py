"""The survey comments and the planted key driver of the sample data, and its null switch."""

from __future__ import annotations

import json
from datetime import date

import duckdb
import pytest

from dagster_project.lib.report.metrics import wilson_interval
from dagster_project.tools.sample_data import comments as cm
from dagster_project.tools.sample_data import names as nm
from dagster_project.tools.sample_data import params as P
from dagster_project.tools.sample_data.generator import generate

SMALL = {"scale": 0.1, "start": date(2024, 1, 1), "days": 240, "progress": False}


@pytest.fixture(scope="module")
def planted_and_null(tmp_path_factory):
    root = tmp_path_factory.mktemp("comments")
    generate(root / "planted", seed=11, **SMALL)
    generate(root / "null", seed=11, planted_effects=False, **SMALL)
    return root / "planted", root / "null"


def _surveys(root):
    con = duckdb.connect()
    con.sql(f"create table sv as select * from read_json('{root}/surveys/*.jsonl', format='newline_delimited')")
    return con


def test_the_truth_file_names_the_planted_topic_and_key_driver(planted_and_null):
    planted, null = planted_and_null
    truth = json.loads((planted / "_truth.json").read_text(encoding="utf-8"))
    assert truth["planted_effects"] is True
    assert truth["planted_topic"] == P.PLANTED_TOPIC
    driver = truth["planted_key_driver"]
    assert driver["stage"] == P.PLANTED_KEY_DRIVER
    strongest = max(driver["renewal_logit_per_satisfied_stage"].items(), key=lambda kv: kv[1])[0]
    assert strongest == driver["stage"] == max(driver["later_nps_points_per_satisfied_stage"].items(),
                                               key=lambda kv: kv[1])[0]
    nothing = json.loads((null / "_truth.json").read_text(encoding="utf-8"))
    assert nothing["planted_effects"] is False and nothing["effects"] == {}
    assert nothing["planted_topic"] is None and nothing["planted_key_driver"] is None


def test_every_comment_is_a_template_tied_to_the_score(planted_and_null):
    planted, _ = planted_and_null
    praise = {t for stage in cm.PRAISE.values() for texts in stage.values() for t in texts}
    complaints = {t for texts in cm.TEMPLATES.values() for t in texts}
    rows = _surveys(planted).execute("select stage, score, comment from sv where comment is not null").fetchall()
    assert len(rows) > 400  # enough comments for every stage and score
    for stage, score, comment in rows:
        text = comment.split("，")[0] if any(p.split("{")[0] in comment for p in nm.PHONE_COMMENT_TEMPLATES) else comment
        text = next((t for t in praise | complaints | set(cm.NEUTRAL) if comment.startswith(t)), text)
        if score >= 4:
            assert text in praise, (stage, score, comment)
        else:
            assert text in complaints or text in cm.NEUTRAL, (stage, score, comment)


def test_late_surveyors_are_what_the_slow_branch_writes_about_and_nothing_when_nothing_is_planted(planted_and_null):
    planted, null = planted_and_null
    late = tuple(cm.TEMPLATES["SURVEYOR_LATE"])

    def late_comments(root, branch_is_slow: bool) -> tuple[int, int]:
        rows = _surveys(root).execute(
            "select comment from sv where stage = 'SURVEY' and comment is not null and "
            + ("substr(claim_no, 3, 2) = ?" if branch_is_slow else "substr(claim_no, 3, 2) <> ?"),
            [P.SLOW_SURVEY_BRANCH]).fetchall()
        return sum(1 for (c,) in rows if c.startswith(late)), len(rows)

    def share(counts: tuple[int, int]) -> float:
        return counts[0] / counts[1]

    assert share(late_comments(planted, True)) > 3 * share(late_comments(planted, False))
    # without planted effects the slow branch writes about late surveyors no more than chance
    # allows (a few dozen of its comments here: its interval, not a fixed ratio)
    assert wilson_interval(*late_comments(null, True))[0] <= share(late_comments(null, False))
    # the slow branch's SURVEY stage is below the other branches' beyond chance, and like theirs
    # without planted effects (about 60 JL responses here: intervals, not fixed cut-offs)
    for name, root in (("planted", planted), ("null", null)):
        (x, n), (x_rest, n_rest) = _surveys(root).execute("""
            select count(*) filter (where score >= 4), count(*) from sv where stage = 'SURVEY'
            group by substr(claim_no, 3, 2) = ? order by min(substr(claim_no, 3, 2) = ?) desc""",
            [P.SLOW_SURVEY_BRANCH, P.SLOW_SURVEY_BRANCH]).fetchall()
        low, high = wilson_interval(x, n)
        rest = x_rest / n_rest
        if name == "planted":
            assert high < rest, (x, n, rest)
        else:
            assert low <= rest <= high, (x, n, rest)


def test_comments_draw_nothing_from_the_random_streams(tmp_path):
    """The same data set with other templates: every number of every file is the same, only the
    comment texts differ (the comments are a pure function of the response number)."""
    a, b = tmp_path / "a", tmp_path / "b"
    small = {**SMALL, "days": 60}
    generate(a, seed=3, **small)
    saved = dict(cm.TEMPLATES)
    try:
        cm.TEMPLATES.update({k: tuple(t + "。" for t in v) for k, v in cm.TEMPLATES.items()})
        generate(b, seed=3, **small)
    finally:
        cm.TEMPLATES.clear()
        cm.TEMPLATES.update(saved)
    for folder in ("policies", "claims", "calls", "complaints"):
        for path in sorted((a / folder).iterdir()):
            assert path.read_bytes() == (b / folder / path.name).read_bytes(), path
    con = duckdb.connect()
    diff = con.execute(f"""
        select count(*) from read_json('{a}/surveys/*.jsonl', format='newline_delimited') as x
        join read_json('{b}/surveys/*.jsonl', format='newline_delimited') as y using (response_id)
        where x.score <> y.score or x.responded_ts <> y.responded_ts or coalesce(x.nps, -1) <> coalesce(y.nps, -1)
           or (x.comment is null) <> (y.comment is null)""").fetchone()[0]
    assert diff == 0
