"""The benchmark's output: a JSON document and a markdown table (pure functions over plain dicts).

A *stage row* is ``{"stage", "seconds", "rows", "peak_rss_bytes", "floor_seconds",
"floor_peak_rss_bytes", "note"}``; derived columns (rows/s, ratio) are computed here so the JSON
and the table always agree.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

GIB = 1024 ** 3

# The performance targets (README, "Performance"; on a 2-core, 24 GiB machine). A target applies at
# its scale; at other scales the same thresholds are shown for reference only.
TARGETS = {
    10.0: {"ratio_max": 1.3, "peak_rss_max_gib": 4.0, "incremental_share_max": 0.10, "incremental_ratio_max": 1.5},
    100.0: {"ratio_max": 1.15, "peak_rss_max_gib": 8.0, "incremental_share_max": 0.05, "incremental_ratio_max": None},
}


def ratio(pipeline_seconds: float | None, floor_seconds: float | None) -> float | None:
    """pipeline / floor; None where either side is missing or the floor took no measurable time."""
    if pipeline_seconds is None or not floor_seconds or floor_seconds <= 0:
        return None
    return pipeline_seconds / floor_seconds


def rows_per_second(rows: int | None, seconds: float | None) -> float | None:
    if rows is None or not seconds or seconds <= 0:
        return None
    return rows / seconds


def enrich_stage(row: dict) -> dict:
    out = dict(row)
    out["rows_per_second"] = rows_per_second(row.get("rows"), row.get("seconds"))
    out["floor_rows_per_second"] = rows_per_second(row.get("rows"), row.get("floor_seconds"))
    out["ratio"] = ratio(row.get("seconds"), row.get("floor_seconds"))
    return out


def targets_for(scale: float) -> tuple[dict, bool]:
    """(targets, applies): the targets of ``scale`` if there are any, else scale 10's for reference."""
    if scale in TARGETS:
        return TARGETS[scale], True
    return TARGETS[10.0], False


def evaluate_targets(scale: float, total_ratio: float | None, peak_rss_bytes: int | None,
                     incremental_share: float | None, completed: bool,
                     incremental_ratio: float | None = None) -> list[dict]:
    targets, applies = targets_for(scale)
    scope = f"scale {scale:g}" if applies else "scale 10 target, shown for reference"
    out = [{"target": "completes", "limit": True, "value": completed, "met": completed, "applies": True}]
    out.append({"target": "total pipeline / floor", "limit": targets["ratio_max"], "value": total_ratio,
                "met": None if total_ratio is None else total_ratio <= targets["ratio_max"],
                "applies": applies, "scope": scope})
    peak_gib = None if peak_rss_bytes is None else peak_rss_bytes / GIB
    out.append({"target": "peak memory (GiB)", "limit": targets["peak_rss_max_gib"], "value": peak_gib,
                "met": None if peak_gib is None else peak_gib <= targets["peak_rss_max_gib"],
                "applies": applies, "scope": scope})
    if targets["incremental_share_max"] is not None:
        out.append({"target": "one-day incremental / full run", "limit": targets["incremental_share_max"],
                    "value": incremental_share,
                    "met": None if incremental_share is None else incremental_share <= targets["incremental_share_max"],
                    "applies": applies, "scope": scope})
    if targets["incremental_ratio_max"] is not None:
        out.append({"target": "one-day incremental / its floor", "limit": targets["incremental_ratio_max"],
                    "value": incremental_ratio,
                    "met": None if incremental_ratio is None else incremental_ratio <= targets["incremental_ratio_max"],
                    "applies": applies, "scope": scope})
    return out


def machine_info() -> dict:
    import psutil

    return {
        "cpu_count_logical": os.cpu_count(),
        "cpu_count_physical": psutil.cpu_count(logical=False),
        "memory_bytes": psutil.virtual_memory().total,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
    }


def versions() -> dict:
    from importlib import metadata

    out = {"python": sys.version.split()[0]}
    for name in ("duckdb", "dagster", "dagster-dbt", "dbt-core", "dbt-duckdb", "great-expectations", "pandas"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


# ------------------------------------------------------------------------------------ markdown

def _s(seconds: float | None) -> str:
    return "–" if seconds is None else (f"{seconds:.2f}" if seconds < 100 else f"{seconds:.0f}")


def _n(value: int | float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def _mib(value: int | None) -> str:
    return "–" if value is None else f"{value / 1024 ** 2:,.0f}"


def _x(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def stage_table(stages: list[dict]) -> str:
    head = ("| stage | pipeline s | rows | rows/s | peak RSS MiB | floor s | floor rows/s | floor peak MiB "
            "| ratio | note |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    lines = [head]
    for r in stages:
        lines.append(
            f"| {r['stage']} | {_s(r.get('seconds'))} | {_n(r.get('rows'))} | {_n(r.get('rows_per_second'))} "
            f"| {_mib(r.get('peak_rss_bytes'))} | {_s(r.get('floor_seconds'))} | {_n(r.get('floor_rows_per_second'))} "
            f"| {_mib(r.get('floor_peak_rss_bytes'))} | {_x(r.get('ratio'))} | {r.get('note') or ''} |")
    return "\n".join(lines)


def markdown(doc: dict) -> str:
    m, v = doc["machine"], doc["versions"]
    lines = [
        f"# Benchmark: scale {doc['scale']:g}, {doc['days']} days (seed {doc['seed']}), dbt on {doc.get('engine', 'duckdb')}",
        "",
        f"Machine: {m['cpu_count_logical']} cores, {m['memory_bytes'] / GIB:.1f} GiB, {m['platform']}.  ",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val) + ".  ",
        f"Run at {doc['started_at']}; landing data: {doc['landing_dir']} ({doc['generation']['status']}).",
        "",
        stage_table(doc["stages"]),
        "",
        f"**Total (ingest → publish, one `cs-warehouse run`)**: pipeline {_s(doc['total']['seconds'])} s, "
        f"floor {_s(doc['total']['floor_seconds'])} s, ratio **{_x(doc['total']['ratio'])}**; "
        f"peak RSS pipeline {_mib(doc['total']['peak_rss_bytes'])} MiB, floor {_mib(doc['total']['floor_peak_rss_bytes'])} MiB.",
    ]
    inc = doc.get("incremental") or {}
    if inc.get("pending"):
        lines.append("**One-day incremental run**: still running (this is the report written before it).")
    elif inc.get("seconds") is not None and inc.get("share") is None:
        lines.append(f"**One-day incremental run** ({inc.get('new_day')}): did not complete "
                     f"(exit {inc.get('returncode')} after {_s(inc['seconds'])} s).")
    elif inc.get("seconds") is not None:
        lines.append(f"**One-day incremental run** ({inc.get('new_day')}, {inc.get('new_files')} new files): "
                     f"{_s(inc['seconds'])} s = **{inc['share']:.1%}** of the full run; "
                     f"one-day floor {_s(inc.get('floor_seconds'))} s, ratio **{_x(inc.get('ratio'))}**; "
                     f"peak RSS {_mib(inc.get('peak_rss_bytes'))} MiB.")
        same = inc.get("floor_equals_run")
        if same:
            lines.append(f"**One-day floor marts = one-day run marts**: "
                         f"{'yes' if not same['differing'] else 'NO'} ({same['tables_equal']}/{same['tables']}"
                         + (f"; differ: {', '.join(same['differing'])}" if same["differing"] else "") + ").")
    elif inc.get("error"):
        lines.append(f"**One-day incremental run**: not measured — {inc['error']}")
    for run in (doc.get("dagster_instance") or {}).get("runs", []):
        lines.append(f"**Dagster instance**: run {run['run_id'][:8]} ({run['job']}, {run['status']}): "
                     f"{run['events']} events, {run['materializations']} materializations, "
                     f"{run['check_evaluations']} check evaluations, planning {_s(run['planning_seconds'])} s.")
    if doc.get("dagster_instance"):
        lines.append(f"Event log on disk: {_mib(doc['dagster_instance'].get('event_log_bytes'))} MiB.")
    eq = doc["floor_equals_pipeline"]
    lines.append(f"**Floor marts = pipeline marts**: {'yes' if eq['passed'] else 'NO'} "
                 f"({eq['tables_equal']}/{eq['tables']} published tables equal"
                 + (f"; differ: {', '.join(eq['differing'])}" if eq.get("differing") else "") + ").")
    lines += ["", "Targets:", "", "| target | limit | value | met |", "|---|---:|---:|---|"]
    for t in doc["targets"]:
        value = t["value"]
        shown = ("yes" if value else "no") if isinstance(value, bool) else ("–" if value is None else f"{value:.3g}")
        met = "–" if t["met"] is None else ("met" if t["met"] else "**missed**")
        scope = "" if t.get("applies", True) else " (reference)"
        lines.append(f"| {t['target']}{scope} | {t['limit']} | {shown} | {met} |")
    if doc.get("notes"):
        lines += ["", "Notes:", ""] + [f"- {n}" for n in doc["notes"]]
    return "\n".join(lines) + "\n"


def write_outputs(doc: dict, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"bench-{doc['scale']:g}"
    json_path = out_dir / f"{stem}.json"
    md_path = out_dir / f"{stem}.md"
    json_path.write_text(json.dumps(doc, indent=2, default=str), encoding="utf-8")
    md_path.write_text(markdown(doc), encoding="utf-8")
    return json_path, md_path
