"""Build Superset's import bundle (a ZIP of YAML files) from ``dashboards.yml`` and the semantic layer.

    .venv/bin/python bi/superset/bundle.py --published data/warehouse/published.duckdb --out data/bi/bundle.zip

- one database: the published DuckDB file, read-only (``connect_args: {read_only: true}``), no DML;
- one dataset per semantic model a chart uses (schema ``marts``), its columns from the dbt manifest
  and **its metrics from the semantic manifest**: a simple metric is ``SUM(<measure expr>)``, a ratio
  metric ``SUM(<numerator>) / NULLIF(SUM(<denominator>), 0)`` (times its scale for the per-10k
  rates), so a chart grouped by anything divides sums;
- the charts and dashboards of ``dashboards.yml``; ``queries.json`` beside the ZIP lists each chart's
  query (what the test renders through Superset's chart-data API).

Identifiers are UUIDs derived from names, so a second import updates the same objects.
docs/bi.md#superset-dashboards
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import uuid
import zipfile
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from dagster_project.lib.report import semantic  # noqa: E402  (the repository on the path first)
from dagster_project.lib.transform.catalog import load_manifest  # noqa: E402
from dagster_project.lib.transform.dbt_project import prepare_manifest  # noqa: E402

SPEC = Path(__file__).with_name("dashboards.yml")
NAMESPACE = uuid.UUID("6b1f4d5e-3c2a-4f7e-9a10-2b9c8d7e6f50")
DATABASE_NAME = "cs_warehouse_published"
ROOT = "cs_warehouse_dashboards"
EXPOSURE = "superset_dashboards"  # the dbt exposure that lists the marts the dashboards read
VIZ = {"big_number": "big_number_total", "line": "echarts_timeseries_line", "bar": "echarts_timeseries_bar",
       "pivot": "pivot_table_v2"}
SUPERSET_TYPES = {"date": "DATE", "timestamp": "TIMESTAMP", "varchar": "VARCHAR", "string": "VARCHAR",
                  "bigint": "BIGINT", "integer": "INTEGER", "double": "DOUBLE", "boolean": "BOOLEAN",
                  "decimal": "DECIMAL"}


def _uuid(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


def metric_sql(manifest: dict, name: str) -> str:
    """The SQL of a semantic-layer metric over its mart's rows (see the module docstring)."""
    metric = next(m for m in manifest["metrics"] if m["name"] == name)
    if metric["type"] == "simple":
        measure = semantic.measures(manifest)[metric["type_params"]["measure"]["name"]]
        return f"SUM({measure.expr})"
    ratio = semantic.ratio_definition(manifest, name)
    sql = f"SUM({ratio.numerator.expr}) / NULLIF(SUM({ratio.denominator.expr}), 0)"
    return sql if ratio.scale == 1 else f"{semantic._number(ratio.scale)} * {sql}"


def metric_format(manifest: dict, name: str) -> str:
    metric = next(m for m in manifest["metrics"] if m["name"] == name)
    if metric["type"] == "simple":
        return ",.0f"
    return ".1%" if semantic.ratio_definition(manifest, name).scale == 1 else ",.1f"


def _model_metrics(manifest: dict, model: dict) -> list[str]:
    """Every metric whose measures all belong to `model`."""
    own = {m["name"] for m in model.get("measures") or []}
    out = []
    for metric in manifest["metrics"]:
        if metric["type"] == "simple" and metric["type_params"]["measure"]["name"] in own:
            out.append(metric["name"])
        elif metric["type"] in ("ratio", "derived"):
            try:
                ratio = semantic.ratio_definition(manifest, metric["name"])
            except semantic.SemanticError:
                continue
            if {ratio.numerator.name, ratio.denominator.name} <= own:
                out.append(metric["name"])
    return out


def dataset_yaml(manifest: dict, dbt_manifest: dict, model: dict, database_uuid: str) -> dict:
    table = model["node_relation"]["alias"]
    node = next(n for n in dbt_manifest["nodes"].values() if n.get("resource_type") == "model" and n["name"] == table)
    time_name = (model.get("defaults") or {}).get("agg_time_dimension")
    time_dim = next((d for d in model["dimensions"] if d["name"] == time_name), {})
    time_column = time_dim.get("expr") or time_dim.get("name")
    columns = []
    for name, column in node["columns"].items():
        kind = SUPERSET_TYPES.get(str(column.get("data_type") or "").lower(), "VARCHAR")
        columns.append({"column_name": name, "verbose_name": None, "is_dttm": kind in ("DATE", "TIMESTAMP"),
                        "is_active": True, "type": kind, "advanced_data_type": None, "groupby": True,
                        "filterable": True, "expression": None,
                        "description": (column.get("description") or "")[:1000] or None,
                        "python_date_format": None, "extra": {}})
    metrics = []
    for name in _model_metrics(manifest, model):
        metric = next(m for m in manifest["metrics"] if m["name"] == name)
        metrics.append({"metric_name": name, "verbose_name": metric.get("label") or name, "metric_type": None,
                        "expression": metric_sql(manifest, name), "description": metric.get("description") or None,
                        "d3format": metric_format(manifest, name), "currency": None, "extra": {},
                        "warning_text": None})
    return {"table_name": table, "main_dttm_col": time_column, "description": (node.get("description") or None),
            "default_endpoint": None, "offset": 0, "cache_timeout": None, "schema": "marts", "catalog": None,
            "sql": None, "params": None, "template_params": None, "filter_select_enabled": True,
            "fetch_values_predicate": None, "extra": None, "normalize_columns": False, "always_filter_main_dttm": False,
            "uuid": _uuid("dataset", table), "metrics": metrics, "columns": columns, "version": "1.0.0",
            "database_uuid": database_uuid}


def chart_params(chart: dict, dataset: dict, manifest: dict) -> tuple[dict, dict]:
    """(Superset's form data, the chart-data query the test runs) of one chart of the spec, with its
    ``where`` flag applied to both."""
    params, query = _viz_params(chart, dataset, manifest)
    where = chart.get("where")
    if where is not None:
        # Only a boolean column of the dataset (a flag such as is_valid_rate_mature), never free SQL.
        if where not in {c["column_name"] for c in dataset["columns"] if c.get("type") == "BOOLEAN"}:
            raise ValueError(f"{SPEC.name}: chart {chart['title']!r}: where {where!r} is not a boolean column of "
                             f"{dataset['table_name']}")
        params["adhoc_filters"] = [{"expressionType": "SQL", "sqlExpression": where, "clause": "WHERE",
                                    "filterOptionName": f"filter_{where}"}]
        query["extras"] = {"where": where}
    return params, query


def _viz_params(chart: dict, dataset: dict, manifest: dict) -> tuple[dict, dict]:
    """The form data and query of the chart's kind (viz)."""
    viz = chart["viz"]
    metrics = list(chart["metrics"])
    fmt = metric_format(manifest, metrics[0])
    base = {"viz_type": VIZ[viz], "adhoc_filters": [], "row_limit": 10000, "extra_form_data": {}}
    if viz == "big_number":
        return {**base, "metric": metrics[0], "y_axis_format": fmt, "header_font_size": 0.4,
                "subheader_font_size": 0.15}, {"metrics": metrics, "columns": []}
    if viz == "line":
        x = dataset["main_dttm_col"]
        return {**base, "x_axis": x, "time_grain_sqla": "P1M", "metrics": metrics, "groupby": [],
                "y_axis_format": fmt, "show_legend": True, "markerEnabled": True,
                "x_axis_sort_asc": True}, {"metrics": metrics, "columns": [x], "orderby": [[x, True]]}
    if viz == "bar":
        x = chart["x"]
        return {**base, "x_axis": x, "metrics": metrics, "groupby": [], "y_axis_format": fmt, "orientation": "vertical",
                "show_legend": True, "x_axis_sort_asc": True}, {"metrics": metrics, "columns": [x], "orderby": [[x, True]]}
    if viz == "pivot":
        return {**base, "groupbyRows": chart["rows"], "groupbyColumns": chart["columns"], "metrics": metrics,
                "aggregateFunction": "Sum", "valueFormat": fmt, "metricsLayout": "COLUMNS"}, {
            "metrics": metrics, "columns": [*chart["rows"], *chart["columns"]]}
    raise ValueError(f"{SPEC.name}: chart {chart['title']!r}: unknown viz {viz!r} (one of {', '.join(VIZ)})")


def _position(dashboard_title: str, charts: list[tuple[str, str, str]]) -> dict:
    """Superset's grid: rows of three charts; a pivot table takes a row of its own (full width)."""
    position = {"DASHBOARD_VERSION_KEY": "v2",
                "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
                "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": [], "parents": ["ROOT_ID"]},
                "HEADER_ID": {"id": "HEADER_ID", "type": "HEADER", "meta": {"text": dashboard_title}}}
    rows: list[list[tuple[str, str, str]]] = []
    for chart in charts:
        if chart[2] == "pivot_table_v2":
            rows.append([chart])
            rows.append([])
        elif not rows or len(rows[-1]) == 3 or (rows[-1] and rows[-1][0][2] == "pivot_table_v2"):
            rows.append([chart])
        else:
            rows[-1].append(chart)
    number = 0
    for i, row in enumerate([r for r in rows if r], start=1):
        row_id = f"ROW-{i}"
        position["GRID_ID"]["children"].append(row_id)
        position[row_id] = {"type": "ROW", "id": row_id, "children": [], "parents": ["ROOT_ID", "GRID_ID"],
                            "meta": {"background": "BACKGROUND_TRANSPARENT"}}
        for chart_uuid, title, viz in row:
            number += 1
            chart_id = f"CHART-{number}"
            position[row_id]["children"].append(chart_id)
            full = viz == "pivot_table_v2"
            position[chart_id] = {"type": "CHART", "id": chart_id, "children": [],
                                  "parents": ["ROOT_ID", "GRID_ID", row_id],
                                  "meta": {"width": 12 if full else 4, "height": 90 if full else 50, "chartId": 0,
                                           "uuid": chart_uuid, "sliceName": title}}
    return position


def _exposure_models(dbt_manifest: dict, name: str) -> set[str]:
    node = next((e for e in (dbt_manifest.get("exposures") or {}).values() if e.get("name") == name), None)
    if node is None:
        raise ValueError(f"dbt exposure {name!r} is not in the manifest (dbt/models/semantic/_exposures.yml)")
    return {uid.split(".")[-1] for uid in node["depends_on"]["nodes"] if uid.startswith("model.")}


def build_bundle(published_db: Path, out: Path) -> dict:
    """Write the import ZIP to `out` and `queries.json` beside it; returns the queries document."""
    spec = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    manifest = semantic.load_semantic_manifest()
    dbt_manifest = load_manifest(prepare_manifest())
    models = {m["name"]: m for m in manifest["semantic_models"]}
    database_uuid = _uuid("database", DATABASE_NAME)
    files: dict[str, dict] = {
        f"{ROOT}/metadata.yaml": {"version": "1.0.0", "type": "Dashboard", "timestamp": "2026-01-01T00:00:00+00:00"},
        f"{ROOT}/databases/{DATABASE_NAME}.yaml": {
            "database_name": DATABASE_NAME, "sqlalchemy_uri": f"duckdb:///{Path(published_db).resolve()}",
            "cache_timeout": None, "expose_in_sqllab": True, "allow_run_async": False, "allow_ctas": False,
            "allow_cvas": False, "allow_dml": False, "allow_file_upload": False,
            "extra": {"engine_params": {"connect_args": {"read_only": True}}, "metadata_params": {},
                      "schemas_allowed_for_file_upload": []},
            "uuid": database_uuid, "version": "1.0.0"},
    }
    datasets: dict[str, dict] = {}
    queries = {"database": DATABASE_NAME, "dashboards": []}
    for dashboard in spec["dashboards"]:
        placed = []
        entry = {"slug": dashboard["slug"], "title": dashboard["title"], "charts": []}
        for chart in dashboard["charts"]:
            model = models[chart["model"]]
            table = model["node_relation"]["alias"]
            if table not in datasets:
                datasets[table] = dataset_yaml(manifest, dbt_manifest, model, database_uuid)
                files[f"{ROOT}/datasets/{DATABASE_NAME}/{table}.yaml"] = datasets[table]
            dataset = datasets[table]
            missing = set(chart["metrics"]) - {m["metric_name"] for m in dataset["metrics"]}
            if missing:
                raise ValueError(f"{SPEC.name}: chart {chart['title']!r}: {', '.join(sorted(missing))} "
                                 f"not metrics of the semantic model {chart['model']}")
            params, query = chart_params(chart, dataset, manifest)
            chart_uuid = _uuid("chart", dashboard["slug"], chart["title"])
            files[f"{ROOT}/charts/{dashboard['slug']}-{len(placed) + 1:02d}.yaml"] = {
                "slice_name": chart["title"], "description": None, "certified_by": None,
                "certification_details": None, "viz_type": params["viz_type"], "params": params,
                "query_context": None, "cache_timeout": None, "uuid": chart_uuid, "version": "1.0.0",
                "dataset_uuid": dataset["uuid"]}
            placed.append((chart_uuid, chart["title"], params["viz_type"]))
            entry["charts"].append({"uuid": chart_uuid, "title": chart["title"], "table": table,
                                    "viz_type": params["viz_type"], "query": query,
                                    "sql": {m: metric_sql(manifest, m) for m in chart["metrics"]}})
        files[f"{ROOT}/dashboards/{dashboard['slug']}.yaml"] = {
            "dashboard_title": dashboard["title"], "description": None, "css": "", "slug": dashboard["slug"],
            "certified_by": None, "certification_details": None, "published": True,
            "uuid": _uuid("dashboard", dashboard["slug"]), "position": _position(dashboard["title"], placed),
            "metadata": {"color_scheme": "", "refresh_frequency": 0, "expanded_slices": {}, "label_colors": {},
                         "timed_refresh_immune_slices": [], "cross_filters_enabled": False, "default_filters": "{}",
                         "chart_configuration": {}, "native_filter_configuration": []},
            "version": "1.0.0"}
        queries["dashboards"].append(entry)
    exposed = _exposure_models(dbt_manifest, EXPOSURE)
    if set(datasets) != exposed:
        raise ValueError(f"the dashboards read {sorted(datasets)}, the dbt exposure {EXPOSURE} lists {sorted(exposed)}: "
                         "update dbt/models/semantic/_exposures.yml")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, document in sorted(files.items()):
            archive.writestr(name, yaml.safe_dump(document, allow_unicode=True, sort_keys=False))
    out.write_bytes(buffer.getvalue())
    (out.parent / "queries.json").write_text(json.dumps(queries, ensure_ascii=False, indent=1), encoding="utf-8")
    return queries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the Superset import bundle of the warehouse's dashboards.")
    parser.add_argument("--published", type=Path, required=True, help="the published DuckDB file the dashboards read")
    parser.add_argument("--out", type=Path, required=True, help="the ZIP to write (queries.json is written beside it)")
    args = parser.parse_args(argv)
    queries = build_bundle(args.published, args.out)
    print(f"{args.out}: {len(queries['dashboards'])} dashboards, "
          f"{sum(len(d['charts']) for d in queries['dashboards'])} charts")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
