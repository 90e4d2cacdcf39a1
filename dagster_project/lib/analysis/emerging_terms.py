"""Emerging terms: words whose share of the comments rose significantly this month against the
trailing months, per claim stage (docs/definitions.md#emerging-terms).

Each survey comment (``intermediate.int_survey_comments``, already scrubbed of phone and ID
numbers) is segmented with jieba (its own dictionary, no HMM guessing of unknown words, with the
reviewed topic keywords and sentiment terms added as words); a term is a token of two or more
Chinese characters that is not a stop word, counted once per comment. For each stage and month,
a term's comments are compared with the ``BASELINE_MONTHS`` months before: one-sided Fisher exact
test (hypergeometric upper tail) of "a larger share this month", Benjamini-Hochberg over all the
month's terms (every stage: one family per monthly report). A term is emerging when q < ``FDR_Q`` and its share at least doubled (or it
is new). Only terms found in at least ``MIN_COMMENTS`` comments of the month are kept: a word one
customer wrote never leaves the warehouse, which also keeps anything personal a single comment
might carry out of the published file.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import re
from importlib.metadata import version
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from dagster_project.lib.analysis.tables import Analysis, write_table
from dagster_project.settings import DBT_PROJECT_DIR

INPUT = "intermediate.int_survey_comments"
OUTPUT_TABLE = "mart_emerging_terms"
BASELINE_MONTHS = 3
MIN_COMMENTS = 5
FDR_Q = 0.05
MIN_SHARE_RATIO = 2.0
TERM = re.compile(r"^[\u4e00-\u9fff]{2,}$")  # two or more CJK ideographs: no digits, latin, [PHONE]
# Function words jieba keeps as two-character tokens; they say nothing about the service.
STOP_WORDS = frozenset("""
我们 你们 他们 她们 自己 这个 那个 这样 那样 什么 怎么 为什么 因为 所以 但是 然后 而且 或者 还是 就是
已经 一直 一下 一次 一个 一些 没什么 可以 需要 觉得 感觉 时候 现在 今天 昨天 这次 还有 如果 虽然 非常
比较 有点 有些 真的 确实 基本 其他 其它 之后 之前 以后 以前 的话 出来 起来 进行 表示 希望 能够 不过
""".split())

COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("stage", "VARCHAR", "Claim-journey stage of the comments (服务环节)."),
    ("month", "DATE", "Month of the responses, first day."),
    ("term", "VARCHAR", "The term (词语): two or more Chinese characters, as jieba segments the comments."),
    ("comments", "BIGINT", "Comments of the stage in the month (docs/definitions.md#mart_emerging_terms-comments)."),
    ("comments_with_term", "BIGINT", "Of those, comments containing the term (docs/definitions.md#mart_emerging_terms-comments_with_term)."),
    ("share", "DOUBLE", "comments_with_term / comments (docs/definitions.md#mart_emerging_terms-share)."),
    ("baseline_comments", "BIGINT", "Comments of the stage in the 3 months before (a term of a stage without them is not tested) (docs/definitions.md#mart_emerging_terms-baseline_comments)."),
    ("baseline_comments_with_term", "BIGINT", "Of those, comments containing the term (docs/definitions.md#mart_emerging_terms-baseline_comments_with_term)."),
    ("baseline_share", "DOUBLE", "baseline_comments_with_term / baseline_comments (docs/definitions.md#mart_emerging_terms-baseline_share)."),
    ("share_ratio", "DOUBLE", "share / baseline_share; empty when the term is new (docs/definitions.md#mart_emerging_terms-share_ratio)."),
    ("p_value", "DOUBLE", "One-sided Fisher exact p-value of a larger share this month (docs/definitions.md#mart_emerging_terms-p_value)."),
    ("q_value", "DOUBLE", "Benjamini-Hochberg q-value over the month's terms, all stages (docs/definitions.md#mart_emerging_terms-q_value)."),
    ("is_emerging", "BOOLEAN", "q_value < 0.05 and the share at least doubled or the term is new (docs/definitions.md#mart_emerging_terms-is_emerging)."),
    ("emerging_rank", "BIGINT", "Rank of an emerging term in its stage-month by share ratio (new terms first), then count; empty otherwise (docs/definitions.md#mart_emerging_terms-emerging_rank)."),
)
DESCRIPTION = ("Terms of the survey comments (客户原声热词) per claim stage x month x term, for terms in at least 5 comments "
               "of the month: their share against the 3 months before, a one-sided Fisher test with Benjamini-Hochberg "
               "control, and whether the term is emerging.")

_TOKENIZER = None


def domain_words() -> list[str]:
    """The reviewed topic keywords and sentiment terms (dbt seeds), added to jieba's dictionary."""
    words: list[str] = []
    for name, column in (("verbatim_topic_keywords.csv", "keyword"), ("sentiment_lexicon.csv", "term")):
        with open(DBT_PROJECT_DIR / "seeds" / name, encoding="utf-8", newline="") as fh:
            words.extend(row[column] for row in csv.DictReader(fh))
    return sorted({w for w in words if len(w) >= 2})


def tokenizer(cache_dir: Path | None = None):
    """One jieba tokenizer per process (loading its dictionary takes about a second); its cache
    file goes to ``cache_dir`` when given."""
    global _TOKENIZER
    if _TOKENIZER is None:
        import jieba  # deferred: importing and loading jieba's dictionary costs about 1-2 s

        logging.getLogger("jieba").setLevel(logging.WARNING)
        tk = jieba.Tokenizer()
        if cache_dir is not None:
            tk.tmp_dir = str(cache_dir)
        for word in domain_words():
            tk.add_word(word, freq=2000)
        _TOKENIZER = tk
    return _TOKENIZER


def terms_of(text: str, tk) -> set[str]:
    return {t for t in tk.cut(text, HMM=False) if TERM.match(t) and t not in STOP_WORDS}


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    ranked = p[order] * m / np.arange(1, m + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(q, 1.0)
    return out


def emerging(comments: pd.DataFrame, tk) -> pd.DataFrame:
    """comments: stage, month, comment -> the published rows. A ``terms`` column, where present,
    holds each comment's terms already segmented (``comment_terms``); otherwise they are segmented
    here with ``tk``."""
    from scipy import stats  # deferred: scipy costs 1-2 s to import in every process that imports the marts' list

    if comments.empty:
        return pd.DataFrame(columns=[c for c, _, _ in COLUMNS])
    comments = comments.sort_values(["stage", "month", "response_id"], kind="stable")
    counts: dict[tuple[str, object], dict[str, int]] = {}
    totals: dict[tuple[str, object], int] = {}
    segmented = (comments["terms"] if "terms" in comments.columns
                 else (terms_of(text, tk) for text in comments["comment"]))
    for stage, month, terms in zip(comments["stage"], comments["month"], segmented):
        key = (stage, month)
        totals[key] = totals.get(key, 0) + 1
        bucket = counts.setdefault(key, {})
        for term in set(terms):
            bucket[term] = bucket.get(term, 0) + 1
    rows = []
    months = sorted({m for _, m in totals})
    for i, month in enumerate(months):
        before = months[max(0, i - BASELINE_MONTHS):i]
        family = []  # every tested term of the month, all stages: one false-discovery family
        for stage in sorted({s for s, m in totals if m == month}):
            n = totals[(stage, month)]
            nb = sum(totals.get((stage, m), 0) for m in before)
            here = counts[(stage, month)]
            for term in sorted(t for t, x in here.items() if x >= MIN_COMMENTS):
                xb = sum(counts.get((stage, m), {}).get(term, 0) for m in before)
                family.append((stage, term, n, here[term], nb, xb))
        tested = [f for f in family if f[4] > 0]
        # P(X >= x) for X ~ Hypergeometric(population n + nb, successes x + xb, draws n)
        p = stats.hypergeom.sf(np.array([f[3] for f in tested]) - 1, np.array([f[2] + f[4] for f in tested]),
                               np.array([f[3] + f[5] for f in tested]), np.array([f[2] for f in tested])) if tested else np.array([])
        q = benjamini_hochberg(p)
        tested_stats = {(f[0], f[1]): (float(p[j]), float(q[j])) for j, f in enumerate(tested)}
        for stage, term, n, x, nb, xb in family:
            share = x / n
            base_share = xb / nb if nb else None
            ratio = share / base_share if base_share else None
            p_j, q_j = tested_stats.get((stage, term), (None, None))
            is_new = nb > 0 and xb == 0
            emerging_ = bool(q_j is not None and q_j < FDR_Q and (is_new or ratio >= MIN_SHARE_RATIO))
            rows.append({"stage": stage, "month": month, "term": term, "comments": n, "comments_with_term": x,
                         "share": share, "baseline_comments": nb, "baseline_comments_with_term": xb,
                         "baseline_share": base_share, "share_ratio": ratio, "p_value": p_j, "q_value": q_j,
                         "is_emerging": emerging_, "_new": is_new})
    table = pd.DataFrame(rows)
    if table.empty:
        return pd.DataFrame(columns=[c for c, _, _ in COLUMNS])
    table["emerging_rank"] = None
    for _, part in table[table["is_emerging"]].groupby(["stage", "month"]):
        order = part.assign(_ratio=part["share_ratio"].fillna(np.inf)).sort_values(
            ["_new", "_ratio", "comments_with_term", "term"], ascending=[False, False, False, True], kind="stable")
        table.loc[order.index, "emerging_rank"] = np.arange(1, len(order) + 1)
    return table[[c for c, _, _ in COLUMNS]]


def build(con: duckdb.DuckDBPyConnection, scratch_dir: Path | None = None) -> dict[str, int]:
    """Segment the comments on ``con``, test every term and write the table there; returns the
    counts the asset's materialization shows. jieba's dictionary cache goes to ``scratch_dir``."""
    comments, segmented_now = comment_terms(con, scratch_dir)
    table = emerging(comments, None)
    rows = write_table(con, OUTPUT_TABLE, table, COLUMNS, DESCRIPTION)
    return {"rows": rows, "emerging_terms": int(table["is_emerging"].sum()) if len(table) else 0,
            "comments": len(comments), "comments_segmented": segmented_now}


# Segmenting is most of this analysis' cost, and a day's run adds a day of comments to two years of
# them: each comment's terms are kept in the work file (never published), keyed by the response and
# a hash of its text, under a fingerprint of everything segmentation depends on. A run segments
# only the comments it has not seen in that exact text; the statistics are then computed over every
# comment as before, so the table equals a build from nothing (tests/analysis/test_emerging_terms.py).
TERMS_CACHE = "analysis_cache.comment_terms"


def segmentation_fingerprint() -> str:
    """What a comment's terms depend on besides its text: jieba's version and dictionary, the added
    domain words, the stop words and the term pattern."""
    parts = [version("jieba"), "\n".join(domain_words()), "\n".join(sorted(STOP_WORDS)), TERM.pattern]
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()


def comment_terms(con: duckdb.DuckDBPyConnection, scratch_dir: Path | None = None) -> tuple[pd.DataFrame, int]:
    """The comments of ``INPUT`` with their terms (a ``terms`` column), and how many were segmented
    now; the cache then holds exactly the current comments' terms."""
    fingerprint = segmentation_fingerprint()
    schema = TERMS_CACHE.split(".")[0]
    con.execute(f"create schema if not exists {schema}")
    con.execute(f"create table if not exists {TERMS_CACHE} (response_id varchar, comment_md5 varchar, "
                "fingerprint varchar, terms varchar[])")
    comments = con.execute(f"""
        select c.response_id, c.stage, c.responded_month as month, c.comment, md5(c.comment) as comment_md5,
               k.terms
        from {INPUT} as c
        left join {TERMS_CACHE} as k
          on k.response_id = c.response_id and k.comment_md5 = md5(c.comment) and k.fingerprint = ?
    """, [fingerprint]).df()
    missing = comments["terms"].isna()
    if missing.any():
        tk = tokenizer(scratch_dir)
        comments.loc[missing, "terms"] = pd.Series(
            [sorted(terms_of(text, tk)) for text in comments.loc[missing, "comment"]],
            index=comments.index[missing], dtype=object)
    # Rewritten whole: a changed comment, a response gone or another fingerprint leaves no row behind.
    keep = comments[["response_id", "comment_md5", "terms"]]
    con.register("_comment_terms_rows", keep)
    try:
        con.execute(f"create or replace table {TERMS_CACHE} as select response_id, comment_md5, "
                    "? as fingerprint, cast(terms as varchar[]) as terms from _comment_terms_rows", [fingerprint])
    finally:
        con.unregister("_comment_terms_rows")
    return comments.drop(columns=["comment_md5"]), int(missing.sum())


ANALYSIS = Analysis(table=OUTPUT_TABLE, input_model=INPUT, description=DESCRIPTION, build=build)
