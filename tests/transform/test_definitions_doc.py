"""docs/definitions.md has an entry (an anchor) for every KPI column of every published mart, and
the column's dbt description (the comment BI users see in the published file) points to it."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).parents[2]
KPI_TYPES = ("bigint", "integer", "double", "decimal", "boolean")


def _published_columns():
    for path in sorted((ROOT / "dbt" / "models" / "marts").rglob("*.yml")):
        for model in yaml.safe_load(path.read_text(encoding="utf-8")).get("models", []):
            # The catalog's rule for what is published (lib/transform/catalog.py), read from the yml
            if ((model.get("config") or {}).get("meta") or {}).get("published"):
                for column in model.get("columns", []):
                    yield model["name"], column


def test_every_published_kpi_column_has_a_definition_it_points_to():
    doc = (ROOT / "docs" / "definitions.md").read_text(encoding="utf-8")
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', doc))
    kpis, missing, unlinked = 0, [], []
    for model, column in _published_columns():
        if not str(column.get("data_type", "")).lower().startswith(KPI_TYPES):
            continue
        kpis += 1
        anchor = f"{model}-{column['name']}"
        if anchor not in anchors:
            missing.append(anchor)
        if f"docs/definitions.md#{anchor}" not in column.get("description", ""):
            unlinked.append(anchor)
    assert kpis > 200
    assert not missing, f"no entry in docs/definitions.md for {missing}"
    assert not unlinked, f"descriptions that do not point to their entry: {unlinked}"


def test_every_link_into_the_definitions_resolves():
    doc = (ROOT / "docs" / "definitions.md").read_text(encoding="utf-8")
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', doc))
    links = set()
    for folder in ("dbt", "dagster_project", "expectations"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".sql", ".yml", ".py", ".json") and "target" not in path.parts:
                links |= set(re.findall(r"docs/definitions\.md#([\w-]+)", path.read_text(encoding="utf-8")))
    links |= set(re.findall(r"\]\(#([\w-]+)\)", doc))
    assert links and not links - anchors, sorted(links - anchors)


def test_no_design_notes_are_cited_in_the_shipped_code():
    offenders = []
    paths = [*(ROOT / "dbt").rglob("*"), *(ROOT / "dagster_project/tools/sample_data").glob("*.py"),
             *(ROOT / "dagster_project/lib/report" / n for n in ("html.py", "marts.py", "metrics.py")),
             ROOT / "dagster_project/lib/reference.py", *(ROOT / "expectations").glob("marts_*.json")]
    for path in paths:
        if path.name != "defects.py":  # the bad-input catalogue has its own owner
            if path.suffix in (".sql", ".yml", ".py", ".json") and "target" not in path.parts:
                text = path.read_text(encoding="utf-8")
                if re.search(r"DESIGN(\.md| §)|metrics-research|issue \d+", text):
                    offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, offenders


def test_kpi_meta_ratios_name_columns_of_their_model():
    """config.meta.kpi is the catalog other code reads: a ratio's numerator and denominator are
    columns of the same model, and every rollup is one of the known kinds."""
    seen = 0
    for path in sorted((ROOT / "dbt" / "models" / "marts").rglob("*.yml")):
        for model in yaml.safe_load(path.read_text(encoding="utf-8")).get("models", []):
            names = {c["name"] for c in model.get("columns", [])}
            for column in model.get("columns", []):
                kpi = ((column.get("config") or {}).get("meta") or {}).get("kpi")
                if not kpi:
                    continue
                seen += 1
                assert kpi["rollup"] in ("sum", "ratio", "max", "min", "none"), (model["name"], column["name"])
                if kpi["rollup"] == "ratio":
                    assert {kpi["numerator"], kpi["denominator"]} <= names, (model["name"], column["name"], kpi)
    assert seen > 50
