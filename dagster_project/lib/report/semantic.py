"""The semantic layer's definitions, read from dbt's semantic manifest (docs/bi.md#the-semantic-layer).

The metrics of every published KPI are dbt semantic models and metrics (``dbt/models/semantic/``,
MetricFlow): a rate is a ratio metric of two simple metrics, each the SUM of a measure of one mart,
so any grouping (branch, stage, month, quarter, line) divides sums, never averages rates. ``mf query``
answers them from the warehouse (``cs-warehouse metrics`` runs it on the published file).

The report and the CLI summary do not keep a second copy of these formulas: the headline KPIs are
the metrics of the saved query ``headline_by_month``, and this module turns each into the table,
numerator and denominator SQL it is made of (the measures' ``expr``), read from
``dbt/target/semantic_manifest.json`` (written by the same ``dbt parse`` as the manifest). A
headline is pooled over the months it covers from those sums, as MetricFlow computes a ratio metric
over a time range.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from dagster_project.lib.report.metrics import parse_period
from dagster_project.lib.transform.catalog import cached_json, node_meta
from dagster_project.lib.transform.dbt_project import prepare_manifest
from dagster_project.settings import DBT_PROJECT_DIR, Settings

HEADLINE_SAVED_QUERY = "headline_by_month"


class SemanticError(ValueError):
    """The semantic manifest lacks a definition the report needs (names the metric and the rule)."""


def semantic_manifest_path() -> Path:
    """dbt/target/semantic_manifest.json, re-parsed first if any dbt file is newer."""
    return prepare_manifest().parent / "semantic_manifest.json"


def load_semantic_manifest(path: Path | None = None) -> dict:
    path = Path(path) if path is not None else semantic_manifest_path()
    if not path.exists():
        raise SemanticError(f"{path}: no semantic manifest (dbt parse writes it next to manifest.json)")
    return cached_json(path)


@dataclass(frozen=True)
class Measure:
    """One measure of a semantic model: SUM(expr) over the rows of `table` (schema marts)."""

    name: str
    table: str
    expr: str
    agg: str
    time_column: str  # the column behind the model's aggregation time dimension
    time_granularity: str


@dataclass(frozen=True)
class RatioDefinition:
    """A metric that is scale × SUM(numerator) / SUM(denominator)."""

    metric: str
    label: str
    numerator: Measure
    denominator: Measure
    scale: float = 1.0


@dataclass(frozen=True)
class HeadlineDefinition:
    key: str
    ratio: RatioDefinition
    interval: str  # "wilson" (a proportion) | "poisson" (events per exposure)
    n_unit: str


def measures(manifest: Mapping[str, Any]) -> dict[str, Measure]:
    out = {}
    for model in manifest.get("semantic_models") or []:
        relation = model.get("node_relation") or {}
        time_name = (model.get("defaults") or {}).get("agg_time_dimension")
        time_dim = next((d for d in model.get("dimensions") or [] if d.get("name") == time_name), {})
        for measure in model.get("measures") or []:
            agg_time = measure.get("agg_time_dimension") or time_name
            if agg_time != time_name:
                time_dim = next((d for d in model.get("dimensions") or [] if d.get("name") == agg_time), {})
            out[measure["name"]] = Measure(
                measure["name"], relation.get("alias") or model["name"], measure.get("expr") or measure["name"],
                measure.get("agg") or "sum", time_dim.get("expr") or time_dim.get("name") or agg_time,
                ((time_dim.get("type_params") or {}).get("time_granularity") or "day"))
    return out


def _metrics(manifest: Mapping[str, Any]) -> dict[str, dict]:
    return {m["name"]: m for m in manifest.get("metrics") or []}


def _simple_measure(manifest, metrics, all_measures, name: str, using: str) -> Measure:
    metric = metrics.get(name)
    if metric is None or metric.get("type") != "simple":
        raise SemanticError(f"metric {using}: its input {name!r} is not a simple metric")
    measure = ((metric.get("type_params") or {}).get("measure") or {}).get("name")
    if measure not in all_measures or all_measures[measure].agg != "sum":
        raise SemanticError(f"metric {name}: its measure {measure!r} is not a SUM measure of a semantic model")
    return all_measures[measure]


def ratio_definition(manifest: Mapping[str, Any], name: str) -> RatioDefinition:
    """The numerator and denominator measures of a ratio metric, or of a derived metric that scales
    one ratio metric (``expr: <ratio> * <scale>``, the scale also in its ``meta.scale``)."""
    metrics = _metrics(manifest)
    all_measures = measures(manifest)
    metric = metrics.get(name)
    if metric is None:
        raise SemanticError(f"metric {name!r} is not in the semantic manifest")
    scale = 1.0
    ratio = metric
    if metric.get("type") == "derived":
        inputs = (metric.get("type_params") or {}).get("metrics") or []
        scale = float(node_meta(metric).get("scale") or 0)
        expr = str((metric.get("type_params") or {}).get("expr") or "").replace(" ", "")
        if len(inputs) != 1 or not scale or expr not in (f"{inputs[0]['name']}*{_number(scale)}",
                                                         f"{_number(scale)}*{inputs[0]['name']}"):
            raise SemanticError(f"metric {name}: a derived headline metric is one ratio metric times meta.scale")
        ratio = metrics.get(inputs[0]["name"]) or {}
    if ratio.get("type") != "ratio":
        raise SemanticError(f"metric {name}: not a ratio metric (numerator / denominator)")
    params = ratio.get("type_params") or {}
    return RatioDefinition(
        name, metric.get("label") or name,
        _simple_measure(manifest, metrics, all_measures, params["numerator"]["name"], name),
        _simple_measure(manifest, metrics, all_measures, params["denominator"]["name"], name), scale)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def headline_definitions(manifest: Mapping[str, Any] | None = None) -> list[HeadlineDefinition]:
    """The headline KPIs in the saved query's order, each as its ratio definition."""
    manifest = manifest if manifest is not None else load_semantic_manifest()
    saved = next((q for q in manifest.get("saved_queries") or [] if q.get("name") == HEADLINE_SAVED_QUERY), None)
    if saved is None:
        raise SemanticError(f"saved query {HEADLINE_SAVED_QUERY!r} is not in the semantic manifest")
    metrics = _metrics(manifest)
    out = []
    for name in (saved.get("query_params") or {}).get("metrics") or []:
        headline = node_meta(metrics.get(name) or {}).get("headline")
        if not isinstance(headline, Mapping) or not headline.get("key"):
            raise SemanticError(f"metric {name}: a headline metric has config.meta.headline.key")
        interval = headline.get("interval", "wilson")
        if interval not in ("wilson", "poisson"):
            raise SemanticError(f"metric {name}: meta.headline.interval must be wilson or poisson, got {interval!r}")
        out.append(HeadlineDefinition(str(headline["key"]), ratio_definition(manifest, name), interval,
                                      str(headline.get("n_unit") or "")))
    return out


# --------------------------------------------------------------------------------------------------
# MetricFlow over the published file (``cs-warehouse metrics``)


def month_where(period: str, months: int = 1) -> str:
    """A MetricFlow filter for the `months` months ending with `period` (YYYY-MM), inclusive."""
    last = parse_period(period)
    index = last.year * 12 + last.month - 1 - (months - 1)
    first = f"{index // 12:04d}-{index % 12 + 1:02d}-01"
    return (f"{{{{ TimeDimension('metric_time', 'month') }}}} >= '{first}' and "
            f"{{{{ TimeDimension('metric_time', 'month') }}}} <= '{last.isoformat()}'")


def mf_command(*, metrics: list[str] | None = None, saved_query: str | None = None,
               group_by: list[str] | None = None, where: str | None = None, order: list[str] | None = None,
               csv_path: Path | None = None) -> list[str]:
    """The ``mf query`` command line (MetricFlow's CLI, installed with dbt-metricflow)."""
    mf = Path(sys.executable).with_name("mf")
    command = [str(mf) if mf.exists() else (shutil.which("mf") or "mf"), "query"]
    if saved_query:
        command += ["--saved-query", saved_query]
    if metrics:
        command += ["--metrics", ",".join(metrics)]
    if group_by:
        command += ["--group-by", ",".join(group_by)]
    if where:
        command += ["--where", where]
    if order:
        command += ["--order", ",".join(order)]
    if csv_path is not None:
        command += ["--csv", str(csv_path)]
    return command


class MetricFlowError(RuntimeError):
    pass


def mf_query(settings: Settings, **query) -> list[dict[str, str]]:
    """Run ``mf query`` on the settings' published file (read-only) and return its rows (column ->
    text, as mf wrote them)."""
    semantic_manifest_path()  # a fresh parse first, if a dbt file changed
    with tempfile.TemporaryDirectory(prefix="cswh-mf-") as tmp:
        out = Path(tmp) / "result.csv"
        result = subprocess.run(mf_command(csv_path=out, **query), env=settings.metricflow_env(),
                                cwd=DBT_PROJECT_DIR, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not out.exists():
            detail = (result.stderr or result.stdout).strip().splitlines()[-12:]
            raise MetricFlowError(f"mf query failed (exit code {result.returncode}): " + "\n".join(detail))
        with open(out, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
