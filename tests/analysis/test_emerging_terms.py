"""mart_emerging_terms: a word that surges is found, a word few customers wrote never leaves, and
nothing that looks like a phone or ID number is ever a term (docs/definitions.md#emerging-terms)."""

from __future__ import annotations

import pandas as pd
import pytest

from dagster_project.lib.analysis import emerging_terms as et

BASE = ["查勘员很专业", "赔款到账很快", "客服态度很好", "流程简单方便", "定损合理"]


def comments(months: int = 5, surge: int = 0, rare: bool = False) -> pd.DataFrame:
    rows = []
    for m in range(months):
        month = pd.Timestamp(2024, m + 1, 1)
        for i in range(60):
            rows.append(("PAYMENT", month, BASE[i % len(BASE)]))
        if m == months - 1:
            rows += [("PAYMENT", month, "系统升级以后赔款一直显示审核中")] * surge
            if rare:
                rows += [("PAYMENT", month, "找王建国经理处理的，电话13912345678")] * 3
    return pd.DataFrame([(f"R{i:06d}", s, m, t) for i, (s, m, t) in enumerate(rows)],
                        columns=["response_id", "stage", "month", "comment"])


@pytest.fixture(scope="module")
def tk(tmp_path_factory):
    return et.tokenizer(tmp_path_factory.mktemp("jieba"))


def test_a_surging_term_is_emerging_and_steady_terms_are_not(tk):
    table = et.emerging(comments(surge=15), tk)
    last = table[table["month"] == table["month"].max()]
    emerging = set(last.loc[last["is_emerging"], "term"])
    assert {"系统升级", "审核", "显示"} <= emerging, emerging
    assert "赔款" not in emerging  # in every month: no surge
    assert not (set(table.loc[table["month"] < table["month"].max(), "term"]) & set(table.loc[table["is_emerging"], "term"]))
    assert last.loc[last["is_emerging"], "emerging_rank"].min() == 1
    assert (last.loc[last["term"] == "审核", "baseline_comments"] == 180).all()


def test_nothing_rare_or_numeric_leaves(tk):
    table = et.emerging(comments(surge=0, rare=True), tk)
    assert not table["term"].str.contains("[0-9A-Za-z]").any()
    assert "建国" not in set(table["term"]) and "王建国" not in set(table["term"])
    assert (table["comments_with_term"] >= et.MIN_COMMENTS).all()
    assert not table["is_emerging"].any()


def test_terms_are_counted_once_per_comment_and_the_result_is_deterministic(tk):
    table = et.emerging(comments(surge=10), tk)
    again = et.emerging(comments(surge=10).sample(frac=1.0, random_state=4), tk)
    pd.testing.assert_frame_equal(table.reset_index(drop=True), again.reset_index(drop=True))
    assert (table["comments_with_term"] <= table["comments"]).all()
    assert et.terms_of("太慢，太慢了，太慢", tk) == {"太慢"}


def _work_file(path, frame: pd.DataFrame):
    import duckdb

    con = duckdb.connect(str(path))
    con.execute("create schema intermediate")
    con.register("frame", frame.rename(columns={"month": "responded_month"}))
    con.execute(f"create table {et.INPUT} as select * from frame")
    con.unregister("frame")
    return con


def _published(con) -> pd.DataFrame:
    return con.execute(f"select * from marts.{et.OUTPUT_TABLE} order by stage, month, term").df()


def test_a_later_build_segments_only_new_or_changed_comments_and_equals_a_build_from_nothing(tmp_path, tk):
    frame = comments(surge=15)
    con = _work_file(tmp_path / "work.duckdb", frame)
    assert et.build(con, tmp_path)["comments_segmented"] == len(frame)
    first = _published(con)
    assert et.build(con, tmp_path)["comments_segmented"] == 0
    pd.testing.assert_frame_equal(_published(con), first)

    # One comment rewritten, one response gone, two new: only the changed and the new are segmented,
    # and the table equals that of a work file that never had a cache.
    changed = frame.copy()
    changed.loc[3, "comment"] = "系统升级以后赔款一直显示审核中"
    changed = pd.concat([changed.drop(index=[4]), pd.DataFrame(
        [("N1", "PAYMENT", changed["month"].max(), "审核太慢了"), ("N2", "PAYMENT", changed["month"].max(), "定损合理")],
        columns=changed.columns)], ignore_index=True)
    con.execute(f"drop table {et.INPUT}")
    con.register("frame", changed.rename(columns={"month": "responded_month"}))
    con.execute(f"create table {et.INPUT} as select * from frame")
    con.unregister("frame")
    assert et.build(con, tmp_path)["comments_segmented"] == 3
    fresh = _work_file(tmp_path / "fresh.duckdb", changed)
    et.build(fresh, tmp_path)
    pd.testing.assert_frame_equal(_published(con), _published(fresh))
    assert con.execute(f"select count(*) from {et.TERMS_CACHE}").fetchone()[0] == len(changed)


def test_a_changed_dictionary_segments_every_comment_again(tmp_path, tk, monkeypatch):
    frame = comments(surge=5)
    con = _work_file(tmp_path / "work.duckdb", frame)
    et.build(con, tmp_path)
    monkeypatch.setattr(et, "domain_words", lambda: ["审核中"])
    assert et.build(con, tmp_path)["comments_segmented"] == len(frame)
