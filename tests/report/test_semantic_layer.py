"""The semantic layer (dbt semantic models + MetricFlow) is the one definition of the published KPIs.

- every catalogued KPI of a modelled mart is a metric, rates as ratio metrics of their catalogued
  numerator and denominator (the mart ``.yml`` meta), so no grouping averages rates;
- ``mf query`` (through ``cs-warehouse metrics`` and ``semantic.mf_query``) on the session's
  published file answers the headline metrics for a month, and the report's figures for that month
  (its headline tiles and its company and branch rows) equal MetricFlow's;
- a quarter and a stage grouping divide sums (checked against SQL on the mart).
"""

from __future__ import annotations

import csv
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

from dagster_project.lib.report import semantic
from dagster_project.lib.report.marts import headline_figures, read_period
from dagster_project.lib.transform.catalog import load_manifest, marts
from dagster_project.lib.transform.dbt_project import prepare_manifest

# Published marts without a semantic model, and why (docs/bi.md#the-semantic-layer)
NOT_MODELLED = {
    "mart_satisfaction_control_limits": "the satisfaction cells again, with their limits (not additive)",
    "mart_complaint_control_limits": "the complaint cells again, with their limits (not additive)",
    "mart_segment_summary": "no time column; dim_customer_segment carries the same counts per customer",
    "mart_high_risk_profile": "a profile of shares and lifts, nothing additive",
    "mart_underwriting_watchlist": "a list of policies to review, no KPI",
    "fct_followup_case": "case rows; mart_followup holds their counts",
    "fct_complaint_winback": "complaint rows; mart_winback holds their counts",
}


@pytest.fixture(scope="module")
def semantic_manifest() -> dict:
    return semantic.load_semantic_manifest()


def _models_by_table(manifest: dict) -> dict[str, dict]:
    return {(m.get("node_relation") or {}).get("alias"): m for m in manifest["semantic_models"]}


def test_every_catalogued_kpi_of_a_published_mart_is_a_metric_with_its_numerator_and_denominator(semantic_manifest):
    catalog = marts(load_manifest(prepare_manifest()))
    by_table = _models_by_table(semantic_manifest)
    all_measures = semantic.measures(semantic_manifest)
    metrics = {m["name"]: m for m in semantic_manifest["metrics"]}
    published = {name for name, mart in catalog.items() if mart.published}
    assert published - set(by_table) == set(NOT_MODELLED), "a published mart without a semantic model"
    checked = 0
    for table in sorted(published & set(by_table)):
        measures_of_table = {m.name: m for m in all_measures.values() if m.table == table}
        for column, kpi in catalog[table].kpis.items():
            if kpi.rollup == "sum":
                found = [n for n, m in measures_of_table.items() if m.expr in (column, f"case when {column} then 1 else 0 end")
                         or m.expr.endswith(f" then {column} end")]
                assert found and any(metrics.get(n, {}).get("type") == "simple" for n in found), f"{table}.{column}"
                checked += 1
            elif kpi.rollup == "ratio":
                prefix = by_table[table]["name"]
                name = column if column.startswith(prefix + "_") else f"{prefix}_{column}"
                definition = semantic.ratio_definition(semantic_manifest, name)
                assert definition.numerator.table == definition.denominator.table == table, name
                assert (_column(definition.numerator.expr), _column(definition.denominator.expr)) == (
                    kpi.numerator, kpi.denominator), name
                assert definition.scale == (10000.0 if "per_10k" in column else 1e8 if "per_100m" in column else 1.0)
                checked += 1
    assert checked > 100


def _column(expr: str) -> str:
    """The column a measure's expr sums (a boolean counted as 0/1, or a monthly row of a mixed-grain mart)."""
    expr = expr.strip()
    for prefix, suffix in (("case when period_type = 'MONTH' then ", " end"), ("case when ", " then 1 else 0 end")):
        if expr.startswith(prefix) and expr.endswith(suffix):
            return expr[len(prefix):-len(suffix)]
    return expr


def test_the_headline_is_the_saved_query_and_each_headline_is_a_ratio_of_sums(semantic_manifest):
    definitions = semantic.headline_definitions(semantic_manifest)
    assert [d.key for d in definitions] == ["csat", "complaints_per_10k_policy_years", "valid_complaint_rate",
                                            "complaints_within_deadline", "manual_answer_rate", "winback_rate",
                                            "retention_rate"]
    per_10k = definitions[1].ratio
    assert (per_10k.numerator.expr, per_10k.denominator.expr, per_10k.scale) == (
        "received", "policies_in_force / 12.0", 10000.0)
    assert (definitions[0].ratio.numerator.table, definitions[0].ratio.numerator.expr,
            definitions[0].ratio.denominator.expr) == ("mart_stage_satisfaction", "satisfied", "responses")


def _period(published: Path) -> str:
    """The last complete month of the session's data."""
    with duckdb.connect(str(published), read_only=True) as con:
        last = con.execute("SELECT MAX(month) FROM marts.mart_complaints").fetchone()[0]
    index = last.year * 12 + last.month - 2
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _f(text: str) -> float | None:
    return None if text in ("", None) else float(text)


def test_mf_query_answers_the_headline_of_a_month_and_the_report_shows_the_same_figures(built_settings, tmp_path):
    published = built_settings.published_db
    period = _period(published)
    out = tmp_path / "headline.csv"
    # the CLI over mf: the headline metrics, pooled over the 12 months ending with the period
    result = subprocess.run([str(Path(sys.executable).with_name("cs-warehouse")), "metrics", "--period", period,
                             "--months", "12", "--csv", str(out)], env=built_settings.child_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    with open(out, newline="", encoding="utf-8") as fh:
        (row,) = list(csv.DictReader(fh))
    with duckdb.connect(str(published), read_only=True) as con:
        data = read_period(con, period)
        summary = headline_figures(con, last_month=date.fromisoformat(period + "-01"))
    definitions = semantic.headline_definitions()
    assert len(data.headlines) == len(definitions) == len(row)
    for definition, headline, again in zip(definitions, data.headlines, summary):
        mf_value = _f(row[definition.ratio.metric])
        assert mf_value is not None and headline.value is not None, definition.key
        assert headline.value == pytest.approx(mf_value, rel=1e-9), definition.key
        assert again.value == headline.value
        assert headline.last_month == period
    csat = data.headlines[0]
    assert 0.5 < csat.value < 1 and csat.n > 1000


def test_a_month_by_branch_from_mf_equals_the_report_rows(built_settings):
    published = built_settings.published_db
    period = _period(published)
    rows = semantic.mf_query(built_settings, saved_query="headline_by_branch_month",
                             where=semantic.month_where(period))
    with duckdb.connect(str(published), read_only=True) as con:
        data = read_period(con, period)
        csat = dict(con.execute(
            "SELECT branch_code, SUM(satisfied) / SUM(responses) FROM marts.mart_stage_satisfaction "
            "WHERE month = CAST(? AS DATE) GROUP BY ALL", [period + "-01"]).fetchall())
    report = {(r.branch_code, r.metric): r.value for r in data.rows}
    pairs = {"complaints_valid_rate": "valid_complaint_rate", "complaints_within_deadline_share":
             "complaint_within_deadline_share", "calls_manual_answer_rate": "manual_answer_rate",
             "winback_rate": "winback_rate"}
    branches = {r["branch"] for r in rows}
    assert len(branches) >= 5
    compared = 0
    for r in rows:
        assert r["metric_time__month"].startswith(period)
        assert _f(r["satisfaction_csat"]) == pytest.approx(csat[r["branch"]], rel=1e-9)
        for mf_name, report_name in pairs.items():
            value = _f(r[mf_name])
            if value is None:
                assert report.get((r["branch"], report_name)) is None
                continue
            assert report[(r["branch"], report_name)] == pytest.approx(value, rel=1e-9), (r["branch"], mf_name)
            compared += 1
    assert compared >= 2 * len(branches)
    # the company row of the report is the same metric without the branch grouping
    (company,) = semantic.mf_query(built_settings, metrics=list(pairs), where=semantic.month_where(period))
    for mf_name, report_name in pairs.items():
        assert report[("ALL", report_name)] == pytest.approx(_f(company[mf_name]), rel=1e-9)


def test_a_quarter_by_stage_divides_sums_not_monthly_rates(built_settings):
    published = built_settings.published_db
    rows = semantic.mf_query(built_settings, metrics=["satisfaction_csat", "satisfaction_responses"],
                             group_by=["stage", "metric_time__quarter"])
    with duckdb.connect(str(published), read_only=True) as con:
        expected = {(stage, quarter.isoformat()): (x / n, n, mean) for stage, quarter, x, n, mean in con.execute(
            "SELECT stage, CAST(date_trunc('quarter', month) AS DATE), SUM(satisfied), SUM(responses), AVG(csat) "
            "FROM marts.mart_stage_satisfaction GROUP BY ALL").fetchall()}
    assert len(rows) == len(expected)
    differs = 0
    for r in rows:
        ratio, n, mean_of_rates = expected[(r["stage"], r["metric_time__quarter"][:10])]
        assert _f(r["satisfaction_csat"]) == pytest.approx(ratio, rel=1e-9)
        assert _f(r["satisfaction_responses"]) == n
        differs += abs(mean_of_rates - ratio) > 1e-6
    assert differs > 0  # the average of branch-month rates would have given other numbers
