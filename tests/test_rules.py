"""One place per rule (docs/architecture.md): a code list lives in the reference data and the landing
contracts built from it, and the quality suites refer to it; the dbt catalog says which marts are
published and how each KPI is made; one freshness policy; one reader of the dbt manifest."""

from __future__ import annotations

import ast
import csv
import json
import re
from pathlib import Path

from dagster_project.lib.ingest.sources import CONTRACTS
from dagster_project.lib.quality.validate import code_list, list_suites, load_suite_dict
from dagster_project.lib.reference import BRANCH_CODES, STAGE_CODES
from dagster_project.lib.transform.catalog import load_manifest, marts, published_marts
from dagster_project.lib.transform.dbt_project import prepare_manifest
from dagster_project.settings import DBT_PROJECT_DIR, EXPECTATIONS_DIR, REPO_ROOT


def _raw_suites() -> list[tuple[str, dict]]:
    return [(p.stem, json.loads(p.read_text(encoding="utf-8"))) for p in sorted(EXPECTATIONS_DIR.glob("*.json"))]


def test_branch_codes_are_one_list_from_the_reference_data_to_the_seed_and_the_contracts():
    with open(DBT_PROJECT_DIR / "seeds" / "branches.csv", encoding="utf-8") as fh:
        seed = [row["branch_code"] if "branch_code" in row else row["code"] for row in csv.DictReader(fh)]
    assert tuple(seed) == BRANCH_CODES and len(BRANCH_CODES) == 20
    for source, contract in CONTRACTS.items():
        if "branch_code" in contract.column_names:
            assert contract.column("branch_code").codes == BRANCH_CODES, source
    assert code_list("surveys.stage") == STAGE_CODES


def test_suites_take_code_lists_from_the_contracts_instead_of_copying_them():
    """A literal value set in a suite that equals a contract's code list is a second copy of the
    rule; it must be ``{"$codes": "<source>.<column>"}``. Resolved, every reference is the list."""
    lists = {tuple(sorted(c.codes)): f"{s}.{c.name}" for s, contract in CONTRACTS.items()
             for c in contract.columns if c.codes}
    copies, references = [], 0
    for name, data in _raw_suites():
        for index, expectation in enumerate(data["expectations"]):
            value_set = (expectation.get("kwargs") or {}).get("value_set")
            if isinstance(value_set, list) and tuple(sorted(value_set)) in lists:
                copies.append(f"{name} #{index}: copy of {lists[tuple(sorted(value_set))]}")
            elif isinstance(value_set, dict):
                references += 1
                resolved = load_suite_dict(name)["expectations"][index]["kwargs"]["value_set"]
                assert tuple(resolved) == code_list(value_set["$codes"])
    assert copies == []
    assert references >= 14  # the branch codes of every suite with a branch column, at least


def test_every_suite_loads_with_its_references_resolved():
    for name in list_suites():
        data = load_suite_dict(name)
        assert all(not isinstance((e.get("kwargs") or {}).get("value_set"), dict) for e in data["expectations"])


def test_the_catalog_says_what_is_published_and_how_kpis_roll_up():
    manifest = load_manifest(prepare_manifest())
    published = published_marts(manifest)
    assert len(published) >= 13 and all(m.grain for m in published.values())
    for mart in marts(manifest).values():
        for kpi in mart.kpis.values():
            for part in (kpi.numerator, kpi.denominator):
                assert part is None or part in mart.columns, (mart.name, kpi.column, part)


def _calls(module_path: Path, name: str) -> int:
    tree = ast.parse(module_path.read_text(encoding="utf-8"))
    return sum(1 for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr == name
               or isinstance(node, ast.Name) and node.id == name)


def test_one_freshness_policy_and_one_manifest_reader():
    package = REPO_ROOT / "dagster_project"
    freshness = [p for p in package.rglob("*.py") if "FreshnessPolicy" in p.read_text(encoding="utf-8")]
    assert [p.relative_to(package).as_posix() for p in freshness] == ["defs/conventions.py"]
    reads = re.compile(r"json\.loads?\([^)]*manifest[^)]*(read_text|open)", re.I)  # a file, not meta.publish_manifest
    readers = [p.relative_to(package).as_posix() for p in package.rglob("*.py")
               if reads.search(p.read_text(encoding="utf-8")) and p.name != "catalog.py"]
    assert readers == [], "the dbt manifest is read through lib/transform/catalog.load_manifest only"


# --------------------------------------------------------------------------- marts: dbt or GX, not both

def _dbt_rules(manifest: dict) -> dict[str, set[tuple]]:
    """model -> the row rules dbt already enforces on it: contract constraints (not null, a check
    ``col between a and b`` / ``col >= a`` / ``col in (...)``), unique and unique_combination tests,
    relationships tests (the column's values are the referenced seed's codes)."""
    rules: dict[str, set[tuple]] = {}
    for node in manifest["nodes"].values():
        if node.get("resource_type") == "model":
            out = rules.setdefault(node["name"], set())
            for name, column in (node.get("columns") or {}).items():
                for c in column.get("constraints") or []:
                    if c.get("type") == "not_null":
                        out.add(("not_null", name))
                    expression = re.sub(r"\s+", " ", str(c.get("expression") or "")).strip().lower()
                    between = re.fullmatch(rf"{name} between (-?[\d.]+) and (-?[\d.]+)", expression)
                    at_least = re.fullmatch(rf"{name} >= (-?[\d.]+)", expression)
                    in_list = re.fullmatch(rf"{name} in \((.*)\)", expression)
                    if between:
                        out.add(("between", name, float(between.group(1)), float(between.group(2))))
                    if at_least:
                        out.add(("between", name, float(at_least.group(1)), None))
                    if in_list:
                        out.add(("in_set", name, frozenset(v.strip().strip("'").upper() for v in in_list.group(1).split(","))))
        elif node.get("resource_type") == "test":
            meta = node.get("test_metadata") or {}
            model = next((d.split(".")[-1] for d in (node.get("depends_on") or {}).get("nodes", []) if d.startswith("model.")), None)
            if model is None:
                continue
            out = rules.setdefault(model, set())
            kwargs = meta.get("kwargs") or {}
            if meta.get("name") == "unique":
                out.add(("unique", (kwargs.get("column_name"),)))
            elif meta.get("name") == "unique_combination":
                out.add(("unique", tuple(kwargs.get("columns") or ())))
            elif meta.get("name") == "relationships":
                out.add(("in_reference", kwargs.get("column_name")))
    return rules


def gx_duplicates_of_dbt(suite: dict, dbt_rules: set[tuple]) -> list[int]:
    """Indexes of the suite's expectations that restate a rule dbt enforces (pure)."""
    out = []
    for index, e in enumerate(suite["expectations"]):
        kind, kw = e["type"], e.get("kwargs") or {}
        column = kw.get("column")
        if kind == "expect_column_values_to_not_be_null" and ("not_null", column) in dbt_rules:
            out.append(index)
        elif kind == "expect_column_values_to_be_between" and not kw.get("mostly") and (
                "between", column, None if kw.get("min_value") is None else float(kw["min_value"]),
                None if kw.get("max_value") is None else float(kw["max_value"])) in dbt_rules:
            out.append(index)
        elif kind == "expect_column_values_to_be_in_set" and (
                ("in_reference", column) in dbt_rules
                or isinstance(kw.get("value_set"), list)
                and ("in_set", column, frozenset(str(v).upper() for v in kw["value_set"])) in dbt_rules):
            out.append(index)
        elif kind in ("expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique") and (
                ("unique", tuple(kw.get("column_list") or [column]))) in dbt_rules:
            out.append(index)
    return out


def test_mart_suites_keep_what_dbt_cannot_express():
    """A mart row rule lives in the model's contract (DuckDB checks it on every insert) or its dbt
    tests; the Great Expectations suite of the mart keeps reconciliations across tables,
    distributions and the PII scan — never a second copy of a dbt rule."""
    rules = _dbt_rules(load_manifest(prepare_manifest()))
    copies = []
    for name, data in _raw_suites():
        if data["meta"]["layer"] != "marts":
            continue
        model = data["meta"]["table"].split(".")[1]
        for index in gx_duplicates_of_dbt(data, rules.get(model, set())):
            e = data["expectations"][index]
            copies.append(f"{name} #{index} {e['type']}({e['kwargs'].get('column') or e['kwargs'].get('column_list')})")
    assert copies == [], "\n".join(copies)
