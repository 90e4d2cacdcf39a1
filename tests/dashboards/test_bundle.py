"""The Superset bundle is built from the semantic layer (no Superset needed; docs/bi.md#superset-dashboards)."""

from __future__ import annotations

import zipfile

import pytest
import yaml

from bi.superset import bundle
from bi.superset.bundle import build_bundle, metric_sql
from dagster_project.lib.report import semantic


def test_the_bundle_takes_every_metric_from_the_semantic_layer_and_reads_the_exposed_marts(tmp_path):
    queries = build_bundle(tmp_path / "published.duckdb", tmp_path / "bundle.zip")
    manifest = semantic.load_semantic_manifest()
    with zipfile.ZipFile(tmp_path / "bundle.zip") as archive:
        documents = {name: yaml.safe_load(archive.read(name)) for name in archive.namelist()}
    (database,) = [d for n, d in documents.items() if "/databases/" in n]
    assert database["extra"]["engine_params"]["connect_args"] == {"read_only": True} and not database["allow_dml"]
    assert database["sqlalchemy_uri"] == f"duckdb:///{(tmp_path / 'published.duckdb').resolve()}"
    datasets = [d for n, d in documents.items() if "/datasets/" in n]
    assert {d["table_name"] for d in datasets} == {"mart_stage_satisfaction", "mart_claim_cycle", "mart_complaints",
                                                   "mart_winback", "mart_call_center_monthly",
                                                   "mart_contact_resolution", "dim_customer_segment"}
    for dataset in datasets:
        for metric in dataset["metrics"]:
            assert metric["expression"] == metric_sql(manifest, metric["metric_name"])
    csat = next(m for d in datasets for m in d["metrics"] if m["metric_name"] == "satisfaction_csat")
    assert csat["expression"] == "SUM(satisfied) / NULLIF(SUM(responses), 0)" and csat["d3format"] == ".1%"
    per_10k = next(m for d in datasets for m in d["metrics"] if m["metric_name"] == "complaints_per_10k_policy_years")
    assert per_10k["expression"] == "10000 * SUM(received) / NULLIF(SUM(policies_in_force / 12.0), 0)"
    charts = [d for n, d in documents.items() if "/charts/" in n]
    dashboards = [d for n, d in documents.items() if "/dashboards/" in n]
    assert len(dashboards) == 6 and len(charts) == sum(len(d["charts"]) for d in queries["dashboards"])
    placed = {c["meta"]["uuid"] for d in dashboards for c in d["position"].values()
              if isinstance(c, dict) and c.get("type") == "CHART"}
    assert placed == {c["uuid"] for c in charts}
    # the valid rate is charted over the months whose liability decisions are in, by the mart's flag
    valid = [c for d in queries["dashboards"] for c in d["charts"] if "complaints_valid_rate" in c["sql"]]
    assert valid and all(c["query"]["extras"] == {"where": "is_valid_rate_mature"} for c in valid)
    for chart in (c for c in charts if c["uuid"] in {v["uuid"] for v in valid}):
        assert [f["sqlExpression"] for f in chart["params"]["adhoc_filters"]] == ["is_valid_rate_mature"]


def test_a_chart_filter_must_be_a_boolean_column_of_its_mart(tmp_path, monkeypatch):
    spec = tmp_path / "dashboards.yml"
    spec.write_text("dashboards:\n  - slug: x\n    title: X\n    charts:\n"
                    "      - {title: T, model: complaints, viz: line, metrics: [complaints_valid_rate], where: 1=1 or true}\n")
    monkeypatch.setattr(bundle, "SPEC", spec)
    with pytest.raises(ValueError, match="is not a boolean column of mart_complaints"):
        build_bundle(tmp_path / "published.duckdb", tmp_path / "bundle.zip")

