"""The dbt catalog: what the mart ``.yml`` files say, read from the dbt manifest in one place.

The mart ``.yml`` next to each model is the one place for what the rest of the project needs to
know about a mart (docs/architecture.md#the-catalog):

.. code-block:: yaml

    models:
      - name: mart_complaints
        config:
          meta:
            published: true                 # copied into published.duckdb for BI
            grain: [branch_code, month]
        columns:
          - name: valid_rate
            config:
              meta:
                kpi: {numerator: valid, denominator: received, rollup: ratio}

``rollup`` says how a KPI column rolls up to the company: ``sum`` (an additive count), ``ratio``
(numerator / denominator, both columns of the same model), ``max``/``min``, ``none`` (not additive:
a percentile, a mean, a flag; never summed). Publish reads which marts leave the work file and
their comments; the report reads the numerator and denominator of each KPI it shows. Everything
reads the manifest through ``load_manifest`` (the parsed project: ``dbt/target/manifest.json``,
written by ``dbt_project.prepare_manifest``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from dagster_project.settings import DBT_PROJECT_DIR

MANIFEST_PATH = DBT_PROJECT_DIR / "target" / "manifest.json"
DBT_PACKAGE = "cs_warehouse"
MART_SCHEMA = "marts"
ROLLUPS = ("sum", "ratio", "max", "min", "none")

# Published tables that are not dbt models: the monthly KPI history, which the snapshot appends to
# in the work file (lib/report/snapshot.py), and the alerts. They are optional: they exist once written.
HISTORY_TABLES: Mapping[str, str] = {
    "kpi_snapshots": "Monthly KPI snapshot history (append-only), written by the monthly snapshot.",
    # the alert conditions of the daily pipeline (lib/report/alerts.py; docs/bi.md#alerts)
    "branch_alerts": "Branch alerts found after each daily publish, one row per condition, with its evidence.",
}

_CACHE: dict[Path, tuple[float, dict]] = {}


class CatalogError(ValueError):
    """A mart's catalog entry is malformed (names the model, the column and the rule)."""


def load_manifest(path: Path = MANIFEST_PATH) -> dict:
    """The parsed dbt manifest (cached while the file is unchanged); empty if there is none."""
    path = Path(path)
    if not path.exists():
        return {}
    return cached_json(path)


def cached_json(path: Path) -> dict:
    """A JSON artefact of dbt's (manifest, semantic manifest), parsed once while its file is unchanged."""
    mtime = path.stat().st_mtime
    cached = _CACHE.get(path)
    if cached and cached[0] == mtime:
        return cached[1]
    document = json.loads(path.read_text(encoding="utf-8"))
    _CACHE[path] = (mtime, document)
    return document


def node_meta(node: Mapping[str, Any]) -> dict:
    """dbt 1.11 keeps meta under config (``config.meta``); older yml put it at the top."""
    return {**(node.get("meta") or {}), **((node.get("config") or {}).get("meta") or {})}


@dataclass(frozen=True)
class KpiColumn:
    column: str
    rollup: str
    numerator: str | None = None
    denominator: str | None = None


@dataclass(frozen=True)
class Mart:
    name: str
    description: str
    columns: Mapping[str, str]  # column -> description, in the yml's order
    grain: tuple[str, ...] = ()
    kpis: Mapping[str, KpiColumn] = field(default_factory=dict)
    published: bool = False


def _kpi(model: str, column: str, spec: Any) -> KpiColumn:
    if not isinstance(spec, Mapping):
        raise CatalogError(f"{model}.{column}: meta.kpi must be a mapping, got {spec!r}")
    rollup = spec.get("rollup")
    if rollup not in ROLLUPS:
        raise CatalogError(f"{model}.{column}: meta.kpi.rollup must be one of {', '.join(ROLLUPS)}, got {rollup!r}")
    if rollup == "ratio" and not (spec.get("numerator") and spec.get("denominator")):
        raise CatalogError(f"{model}.{column}: a ratio KPI names its numerator and denominator columns")
    return KpiColumn(column, rollup, spec.get("numerator"), spec.get("denominator"))


def marts(manifest: Mapping[str, Any]) -> dict[str, Mart]:
    """Every model of the marts layer, by name.

    The manifest is an argument, never read here by default: a module that computed its assets from
    ``load_manifest()`` at import read a missing or stale manifest on a fresh clone or after a model
    changed. Callers pass ``load_manifest(prepare_manifest())`` (lib/transform/dbt_project.py), or the
    manifest of the build that wrote the marts."""
    out: dict[str, Mart] = {}
    for node in (manifest.get("nodes") or {}).values():
        if node.get("resource_type") != "model" or node.get("package_name", DBT_PACKAGE) != DBT_PACKAGE:
            continue
        if node.get("schema") != MART_SCHEMA and "marts" not in (node.get("fqn") or [])[1:2]:
            continue
        meta = node_meta(node)
        columns = node.get("columns") or {}
        kpis = {}
        for name, column in columns.items():
            spec = node_meta(column).get("kpi")
            if spec is not None:
                kpis[name] = _kpi(node["name"], name, spec)
        for kpi in kpis.values():
            for part in (kpi.numerator, kpi.denominator):
                if part and part not in columns:
                    raise CatalogError(f"{node['name']}.{kpi.column}: meta.kpi names {part!r}, which is not a "
                                       f"column of {node['name']}")
        out[node["name"]] = Mart(
            name=node["name"], description=node.get("description") or "",
            columns={name: (c.get("description") or "") for name, c in columns.items()},
            grain=tuple(meta.get("grain") or ()), kpis=kpis, published=bool(meta.get("published")))
    return out


def published_marts(manifest: Mapping[str, Any]) -> dict[str, Mart]:
    """The marts copied into the published file (``config.meta.published: true``), by name."""
    return {name: mart for name, mart in sorted(marts(manifest).items()) if mart.published}


def kpi(table: str, column: str, manifest: Mapping[str, Any]) -> KpiColumn | None:
    """The catalog entry of a KPI column (None if the column is not a KPI or the mart is unknown)."""
    mart = marts(manifest).get(table)
    return mart.kpis.get(column) if mart else None


def model_nodes(manifest: Mapping[str, Any]) -> list[dict]:
    """Every model node of the project (for the incremental-model fingerprints)."""
    return [n for n in (manifest.get("nodes") or {}).values() if n.get("resource_type") == "model"]


def project_macros_sql(manifest: Mapping[str, Any]) -> str:
    """The SQL of every macro of the project, in a stable order."""
    return "\x00".join(m.get("macro_sql", "") for uid, m in sorted((manifest.get("macros") or {}).items())
                       if m.get("package_name") == DBT_PACKAGE)
