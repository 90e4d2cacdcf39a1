"""The customers' own words: the topic dictionary, the sentiment lexicon and mart_verbatim_topics
(docs/definitions.md#verbatim-topics)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from dagster_project.lib.report.metrics import wilson_interval
from dagster_project.tools.sample_data import comments as cm
from dagster_project.tools.sample_data import params as P
from tests.transform.compiled_sql import compiled_sql, run_compiled

SEEDS = Path(__file__).parents[2] / "dbt" / "seeds"

# Comments written for this test, not by the generator (other wording, other situations), with the
# label a reader gives them: +1 positive, -1 negative.
LABELLED = [
    ("理赔员非常专业，全程耐心解答", 1), ("很满意这次的理赔服务", 1), ("赔款第二天就到了，效率很高，点赞", 1),
    ("流程顺畅，不用跑腿，方便", 1), ("定损结果合理，我能接受", 1), ("感谢客服小姐姐的热情服务", 1),
    ("处理得很及时，放心了", 1), ("查勘员态度诚恳，讲得很清楚", 1), ("问题顺利解决了，谢谢你们", 1),
    ("整体不错，下次还选你们", 1), ("服务周到，超出预期", 1), ("工作人员很贴心，还主动提醒材料", 1),
    ("客服回复迅速，一次就办好了", 1), ("挺好的，没什么意见", 1), ("没有让我多跑一趟，很方便", 1),
    ("等了一个多小时才有人来，太慢了", -1), ("赔款拖了一个月还没到", -1), ("电话一直打不通，气死了", -1),
    ("客服很不耐烦，随便应付", -1), ("定损价格偏低，和修理厂报价差很多", -1), ("手续太繁琐了，要交的材料太多", -1),
    ("对结果很失望，准备投诉", -1), ("业务员敷衍了事，问什么都推诿", -1), ("说好的三天到账，到现在也没到", -1),
    ("不满意，处理太慢", -1), ("问题到现在没有解决", -1), ("态度恶劣，服务糟糕", -1), ("排队排了半天", -1),
    ("解释得不清楚，听不懂", -1), ("对赔付金额有异议，明显少赔", -1), ("服务一般，效率也不高", -1),
    ("不太满意，流程复杂", -1), ("来回跑了好几趟，很麻烦", -1), ("定损员压价太狠了", -1),
    ("回访时问题还是没解决，不了了之", -1), ("迟迟不给答复，让人生气", -1),
]


def _read(name: str) -> list[dict]:
    with open(SEEDS / name, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_the_lexicon_never_counts_a_text_twice():
    rows = _read("sentiment_lexicon.csv")
    terms = [r["term"] for r in rows if r["kind"] != "NEGATOR"]
    negators = [r["term"] for r in rows if r["kind"] == "NEGATOR"]
    assert len(set(terms)) == len(terms) and len(terms) >= 50
    contained = [(a, b) for a in terms for b in terms if a != b and a in b]
    assert not contained, f"a term inside another term would be counted twice: {contained}"
    suffixes = [(a, b) for a in negators for b in negators if a != b and b.endswith(a)]
    assert not suffixes, f"a negator ending with another would flip twice: {suffixes}"
    assert all((r["kind"], r["polarity"]) in {("POSITIVE", "1"), ("NEGATIVE", "-1"), ("NEGATOR", "0")} for r in rows)


def test_the_topic_dictionary_covers_the_planted_topic_and_every_keyword_has_one_topic():
    topics = {r["code"]: r for r in _read("verbatim_topics.csv")}
    keywords = _read("verbatim_topic_keywords.csv")
    assert P.PLANTED_TOPIC["topic"] in topics
    assert {k["topic_code"] for k in keywords} == set(topics)
    assert len({k["keyword"] for k in keywords}) == len(keywords)
    assert all(t["label_zh"] and t["label_en"] for t in topics.values())
    # the generator writes about the same topics, most of the time in words the dictionary lists
    written = set(cm.TEMPLATES) | {t for stage in cm.PRAISE.values() for t in stage}
    assert written == set(topics)
    listed = [text for texts in cm.TEMPLATES.values() for text in texts]
    matched = [text for text in listed if any(k["keyword"] in text for k in keywords)]
    unmatched = set(listed) - set(matched)
    assert unmatched == cm.UNLISTED_WORDING, unmatched


def test_sentiment_of_comments_it_was_not_written_for(built_settings):
    """The lexicon's polarity agrees with a reader's on comments written apart from it: the real
    SQL of int_survey_comments, on in-memory inputs."""
    responses = pd.DataFrame({"response_id": [f"T{i}" for i in range(len(LABELLED))], "branch_code": "JL",
                              "stage": "PAYMENT", "responded_month": pd.Timestamp(2024, 1, 1), "claim_no": None,
                              "score": 3, "is_satisfied": False})
    current = pd.DataFrame({"response_id": responses["response_id"], "comment": [t for t, _ in LABELLED]})
    lexicon = pd.DataFrame(_read("sentiment_lexicon.csv")).astype({"polarity": int})
    out = run_compiled(compiled_sql(built_settings, "int_survey_comments"), {
        "intermediate.int_surveys__attributed": responses, "intermediate.int_surveys__current": current,
        "reference.sentiment_lexicon": lexicon})
    got = dict(zip(out["response_id"], out["sentiment_score"]))
    labels = {f"T{i}": y for i, (_, y) in enumerate(LABELLED)}
    scored = {k: v for k, v in got.items() if v is not None and v == v}
    agree = sum(1 for k, v in scored.items() if (v > 0) == (labels[k] > 0) and v != 0)
    assert len(scored) >= 0.9 * len(LABELLED), f"only {len(scored)} of {len(LABELLED)} comments have a lexicon term"
    assert agree >= 0.85 * len(LABELLED), [(t, got[f"T{i}"]) for i, (t, y) in enumerate(LABELLED)
                                           if not (got[f"T{i}"] == got[f"T{i}"] and (got[f"T{i}"] > 0) == (y > 0))]


@pytest.fixture(scope="module")
def tiny(built_settings):
    con = duckdb.connect(str(built_settings.work_db), read_only=True)
    yield con
    con.close()


def test_the_mart_counts_what_the_comments_say(tiny):
    # every cell x topic; mentions equal the matched comments; commented equal the comments
    cells, topics, rows = tiny.execute("""
        select (select count(*) from marts.mart_stage_satisfaction), (select count(*) from reference.verbatim_topics),
               (select count(*) from marts.mart_verbatim_topics)""").fetchone()
    assert rows == cells * topics
    diff = tiny.execute("""
        with m as (select topic_code, sum(mentions) as mentions from marts.mart_verbatim_topics group by 1),
             t as (select topic_code, count(*) as mentions from intermediate.int_survey_comment_topics group by 1)
        select count(*) from m full join t using (topic_code) where coalesce(m.mentions, 0) <> coalesce(t.mentions, 0)
    """).fetchone()[0]
    assert diff == 0
    commented = tiny.execute("""select sum(commented) from (select distinct branch_code, stage, month, commented
                                from marts.mart_verbatim_topics)""").fetchone()[0]
    assert commented == tiny.execute("select count(*) from intermediate.int_survey_comments").fetchone()[0]
    # the sentiment separates satisfied from dissatisfied comments
    pos_sat, neg_sat = tiny.execute("""
        select avg(case when is_satisfied then 1.0 else 0 end) filter (where sentiment_label = 'POSITIVE'),
               avg(case when is_satisfied then 1.0 else 0 end) filter (where sentiment_label = 'NEGATIVE')
        from intermediate.int_survey_comments""").fetchone()
    assert pos_sat > 0.9 and neg_sat < 0.1, (pos_sat, neg_sat)


def test_no_phone_or_id_number_reaches_the_comments(tiny):
    hits = tiny.execute(r"""select count(*) from intermediate.int_survey_comments
        where regexp_matches(comment, '1[3-9][0-9]{9}') or regexp_matches(comment, '[0-9]{17}[0-9Xx]')""").fetchone()[0]
    typed = tiny.execute("select count(*) from intermediate.int_survey_comments where comment like '%[PHONE]%'").fetchone()[0]
    assert hits == 0 and typed > 0


def test_the_planted_topic_is_the_top_topic_of_the_planted_branch_survey_stage(default_scale_settings):
    truth = json.loads((default_scale_settings.landing_dir / "_truth.json").read_text(encoding="utf-8"))
    planted = truth["planted_topic"]
    con = duckdb.connect(str(default_scale_settings.work_db), read_only=True)
    try:
        rows = con.execute("""
            select topic_code, sum(mentions), sum(commented)
            from marts.mart_verbatim_topics where branch_code = ? and stage = ?
            group by 1 order by 2 desc, 1""", [planted["branch"], planted["stage"]]).fetchall()
        rest = con.execute("""
            select sum(mentions), sum(commented), sum(satisfied_mentioning), sum(satisfied_not_mentioning),
                   sum(responses_not_mentioning)
            from marts.mart_verbatim_topics where branch_code <> ? and stage = ? and topic_code = ?""",
                           [planted["branch"], planted["stage"], planted["topic"]]).fetchone()
    finally:
        con.close()
    (top, x, n), (second, x2, _) = rows[0], rows[1]
    assert top == planted["topic"], rows[:3]
    low, _ = wilson_interval(x, n)
    _, high2 = wilson_interval(x2, n)
    assert low > high2, f"{top} {x}/{n} against {second} {x2}/{n}: not clearly the top"
    _, rest_high = wilson_interval(rest[0], rest[1])
    assert low > rest_high, f"{planted['branch']} {x}/{n} against the other branches {rest[0]}/{rest[1]}"
    print(f"planted topic {top}: {x} of {n} comments ({x / n:.1%}, 95% from {low:.1%}); next {second} {x2}; "
          f"other branches {rest[0]} of {rest[1]} ({rest[0] / rest[1]:.1%})")
