"""The end-of-run summary of ``cs-warehouse run``: what was loaded, what the gates said, what was
published, and a few headline numbers a manager would ask about first.

Tables are aligned by display width: a Chinese character takes two terminal columns
(``display_width``), so labels like 满意度 keep the columns straight.
"""

from __future__ import annotations

import unicodedata
from typing import Sequence

import duckdb

from dagster_project.cli.outcome import RunOutcome
from dagster_project.lib.ingest.loader import landing_exceptions, latest_ledger_entries, stale_partitions
from dagster_project.lib.publish.versions import current_manifest
from dagster_project.lib.report.marts import format_headline, headline_figures
from dagster_project.settings import Settings


def display_width(text: str) -> int:
    """Terminal columns of ``text``: East Asian wide and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 0 if unicodedata.combining(ch) else 1
               for ch in text)


def _pad(text: str, width: int, right: bool) -> str:
    fill = " " * max(width - display_width(text), 0)
    return fill + text if right else text + fill


def table(rows: Sequence[Sequence], headers: Sequence[str]) -> str:
    """Columns aligned by display width; the first column left-aligned, the others right-aligned."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(display_width(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(_pad(c, w, right=i > 0) for i, (c, w) in enumerate(zip(r, widths))).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def ingest_counts(settings: Settings) -> list[tuple]:
    """Per source: files, rows landed/loaded/quarantined and files not loaded (latest attempt of each)."""
    by_source: dict[str, list[int]] = {}
    for entry in latest_ledger_entries(settings.work_db):
        if entry["source"] is None:  # an entry at the top of the landing folder (listed below)
            continue
        totals = by_source.setdefault(entry["source"], [0, 0, 0, 0, 0])
        totals[0] += 1
        for i, column in enumerate(("rows_landed", "rows_loaded", "rows_quarantined"), start=1):
            totals[i] += entry[column] or 0
        totals[4] += entry["status"] not in ("loaded", "skipped")
    return [(source, *totals) for source, totals in sorted(by_source.items())]


def headline_kpis(settings: Settings) -> list[tuple[str, str, str, str, str]]:
    """Company-wide headline KPIs of the published marts over the last 12 months, each with its n
    and 95% interval (the same figures as the monthly report: lib/report/marts.headline_figures)."""
    if not settings.published_db.exists():
        return []
    con = duckdb.connect(str(settings.published_db), read_only=True)
    try:
        return [(h.label, *format_headline(h)) for h in headline_figures(con)]
    finally:
        con.close()


def verdict(outcome: RunOutcome) -> str:
    if outcome.partial:
        return "PARTIAL"
    return "ok" if outcome.success else "FAILED"


def print_run_summary(settings: Settings, outcome: RunOutcome) -> None:
    print()
    print("== Ingest (per source, latest state of every landing file) ==")
    counts = ingest_counts(settings)
    if counts:
        print(table(counts, ("source", "files", "landed", "loaded", "quarantined", "not loaded")))
    print()
    print("== Run ==")
    print(table([(outcome.job, verdict(outcome), f"{outcome.seconds:.1f}s", outcome.checks_passed,
                  len(outcome.checks_failed), outcome.run_id[:8])],
                ("job", "result", "time", "checks passed", "checks failed", "run")))
    for check in outcome.checks_failed:
        print(f"  check failed: {check}")
    for check in outcome.checks_warned:
        print(f"  check warned: {check}")
    for step in outcome.failed_steps:
        print(f"  step failed: {step.splitlines()[0][:200]}")
    for step in outcome.skipped_steps:
        print(f"  step skipped: {step} (a step before it did not produce what it reads; see the run's log)")
    # Proportionate gates: a failed or held-back file holds back only its partition; ignored
    # entries (outside the landing contract) and deleted files are listed (docs/ingest.md).
    stale = stale_partitions(settings.work_db)
    exceptions = landing_exceptions(settings.work_db)
    if stale or exceptions:
        print()
        print("== Stale partitions and landing exceptions ==")
        for entry in stale + exceptions:
            where = f"{entry['source'] or 'landing'} {entry['partition'] or ''}".strip()
            print(f"  {entry['status']:<10} {where}: {entry['reason']}")

    manifest = current_manifest(settings)
    print()
    print("== Published ==")
    if manifest:
        tables = manifest.get("row_counts") or {}
        print(f"  file:     {settings.published_db}")
        print(f"  version:  {manifest.get('version_id')}  (run {str(manifest.get('run_id'))[:8]}, "
              f"{manifest.get('published_at')})")
        print(f"  tables:   {len(tables)} marts, {sum(int(v) for v in tables.values()):,} rows")
    else:
        print("  nothing published yet")
    kpis = headline_kpis(settings)
    if kpis:
        print()
        print("== Headline KPIs ==")
        print(table(kpis, ("KPI (last 12 months)", "value", "n", "95% interval", "months")))
    print()
    print(f"Marts for BI (read-only): {settings.published_db}")
    print(f"Reports:                  {settings.reports_dir}")
    print(f"Dagster UI:               make dev, then http://127.0.0.1:3000/runs/{outcome.run_id} "
          f"(instance {settings.dagster_home})")

    if outcome.partial:
        ignored = [e for e in exceptions if e["status"] == "ignored"]
        print(f"\nPARTIAL: published, but {len(stale)} partition(s) are stale and {len(ignored)} landing "
              "entr(ies) were ignored (listed above, and in the publish manifest). Fix or re-send them and run again.")
    elif not outcome.success:
        print("\nFAILED: see the failed checks/steps above; the published file was left unchanged.")
