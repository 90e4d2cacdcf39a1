"""The end-of-run summary of ``cs-warehouse run``: what was loaded, what the gate said, what was
published, and a few headline numbers a manager would ask about first."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import duckdb

from dagster_project.settings import Settings
from dagster_project.lib.ingest.loader import landing_exceptions, latest_ledger_entries, stale_partitions

if TYPE_CHECKING:
    from dagster_project.cli.run import RunOutcome

def _table(rows: list[tuple], headers: tuple[str, ...]) -> str:
    cells = [tuple(str(c) for c in headers)] + [tuple(str(c) for c in r) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def ingest_counts(settings: Settings) -> list[tuple]:
    """Per source: files, rows landed/loaded/quarantined and failed files (latest attempt of each)."""
    by_source: dict[str, list[int]] = {}
    for entry in latest_ledger_entries(settings.work_db):
        if entry["source"] is None:  # an entry at the top of the landing folder (listed below)
            continue
        totals = by_source.setdefault(entry["source"], [0, 0, 0, 0, 0])
        totals[0] += 1
        for i, column in enumerate(("rows_landed", "rows_loaded", "rows_quarantined"), start=1):
            totals[i] += entry[column] or 0
        totals[4] += entry["status"] == "failed"
    return [(source, *totals) for source, totals in sorted(by_source.items())]


def failed_files(settings: Settings) -> list[tuple[str, str]]:
    """Landing files whose latest ingest attempt failed, with the reason."""
    return [(e["path"], e["message"]) for e in latest_ledger_entries(settings.work_db) if e["status"] == "failed"]


def headline_kpis(settings: Settings) -> list[tuple[str, str, str, str, str]]:
    """Company-wide headline KPIs of the published marts over the last 12 months, each with its n
    and 95% interval (the same figures as the monthly report: lib/report/marts.headline_figures)."""
    from dagster_project.lib.report.marts import format_headline, headline_figures

    if not settings.published_db.exists():
        return []
    con = duckdb.connect(str(settings.published_db), read_only=True)
    try:
        return [(h.label, *format_headline(h)) for h in headline_figures(con)]
    finally:
        con.close()


def print_run_summary(settings: Settings, outcomes: list["RunOutcome"]) -> int:
    from dagster_project.cli.run import published_version

    print()
    print("== Ingest (per source, latest state of every landing file) ==")
    counts = ingest_counts(settings)
    if counts:
        print(_table(counts, ("source", "files", "landed", "loaded", "quarantined", "failed files")))
    print()
    print("== Runs ==")
    print(_table([(o.job, "ok" if o.success else "FAILED", f"{o.seconds:.1f}s", o.checks_passed,
                   len(o.checks_failed), o.run_id[:8]) for o in outcomes],
                 ("job", "result", "time", "checks passed", "checks failed", "run")))
    for outcome in outcomes:
        for check in outcome.checks_failed:
            print(f"  check failed: {check}")
        for step in outcome.failed_steps:
            print(f"  step failed: {step.splitlines()[0][:200]}")

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

    manifest = published_version(settings)
    print()
    print("== Published ==")
    if manifest:
        counts_json = manifest.get("row_counts")
        tables = json.loads(counts_json) if isinstance(counts_json, str) else (counts_json or {})
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
        print(_table(kpis, ("KPI (last 12 months)", "value", "n", "95% interval", "months")))
    print()
    print(f"Marts for BI (read-only): {settings.published_db}")
    print(f"Reports:                  {settings.reports_dir}")
    print(f"Dagster UI:               make dev  (asset graph, schedules, sensor; instance in {settings.dagster_home})")

    busy = [s for o in outcomes for s in o.failed_steps if "another run is in progress" in s]
    if busy:
        print("\nFAILED: another run holds the warehouse; nothing new was published.")
        return 4
    if not all(o.success for o in outcomes):
        print("\nFAILED: see the failed checks/steps above; the published file was left unchanged.")
        return 1
    ignored = [e for e in exceptions if e["status"] == "ignored"]
    if stale or ignored:
        print(f"\nPARTIAL: published, but {len(stale)} partition(s) are stale and {len(ignored)} landing "
              "entr(ies) were ignored (listed above, and in the publish manifest). Fix or re-send them and run again.")
        return 3
    return 0
