"""``cs-warehouse bench --scale S --days N`` / ``make bench SCALE=S``: the scale benchmark.

1. Generate landing data at the scale (cached by its arguments; timed once, when generated).
2. Run the pipeline the way users run it — a subprocess ``python -m dagster_project run`` on a
   clean warehouse — measuring wall time and the peak RSS of the process tree, with per-stage
   times from the Dagster runs' step stats; then the monthly snapshot of the last full month.
3. Run the floor (``benchmarks.floor``) in its own process on the same landing files and check
   that its marts equal the pipeline's.
4. Add one more day of landing files and run the pipeline again on the same warehouse: the
   one-day incremental run, reported as a share of the full run.
5. Write ``<reports>/bench/bench-<scale>.json`` and ``.md`` and print the table.

Locations (env): ``CSWH_BENCH_CACHE`` (default ``data/bench-cache``), ``CSWH_BENCH_WORK`` (default
``data/bench-work``), ``CSWH_REPORTS_DIR`` (the JSON/markdown go to its ``bench/``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from benchmarks import report
from benchmarks.measure import CommandFailed, Measurement, measure_command
from dagster_project.settings import (
    ENGINE_VARIABLE, ENGINES, MEMORY_BUDGET_VARIABLE, REPO_ROOT, TELEMETRY_OFF, eprint, resolve_path,
)

BENCH_SALT = "bench-salt-not-secret"
DEFAULT_START = date(2024, 1, 1)
DEFAULT_SEED = 42
SOURCES = ("policies", "claim_events", "call_logs", "surveys", "complaints", "audits")


# ------------------------------------------------------------------------------------ pure helpers

def cache_key(scale: float, days: int, seed: int, start: date = DEFAULT_START) -> str:
    key = f"{scale:g}-{days}-{seed}"
    return key if start == DEFAULT_START else f"{key}-{start.isoformat()}"


def last_day(start: date, days: int) -> date:
    return start + timedelta(days=days - 1)


def last_full_month(start: date, days: int) -> str:
    """The last calendar month the data covers completely (YYYY-MM): the snapshot's period."""
    end = last_day(start, days)
    if (end + timedelta(days=1)).month != end.month:  # the data ends on a month's last day
        month_end = end
    else:
        month_end = end.replace(day=1) - timedelta(days=1)
    if month_end < start:
        month_end = end  # less than one full month of data: take the partial one
    return f"{month_end:%Y-%m}"


def stage_of_step(step_key: str) -> str:
    """Benchmark stage of a Dagster step key: ``ingest:<source>``, ``dbt``, ``gates``, ``publish``
    or ``other:<step>``. A GX check's step names the asset it checks too, so gates match first."""
    key = step_key.lower()
    if any(w in key for w in ("check", "gx_", "_gx", "gate", "expectation", "suite")):
        return "gates"
    if "publish" in key:
        return "publish"
    if "dbt" in key:
        return "dbt"
    for source in SOURCES:
        if source in key or source.replace("_", "") in key:
            return f"ingest:{source}"
    return f"other:{step_key}"


def warm_page_cache(folder: Path) -> int:
    """Read every file under ``folder`` once (bytes read). The pipeline and the floor then both
    start with the landing files in the operating system's page cache; otherwise whichever runs
    first pays the disk reads for both (the floor runs second)."""
    total = 0
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            with open(path, "rb") as fh:
                while chunk := fh.read(1 << 24):
                    total += len(chunk)
    return total


def is_new_day_file(rel_path: str, new_day: date) -> bool:
    """A daily landing file of ``new_day`` (``<folder>/YYYY-MM-DD.<ext>``); the monthly workbook
    and everything else belong to the base data set."""
    return Path(rel_path).name.split(".")[0] == new_day.isoformat()


# ------------------------------------------------------------------------------------ environment

def python_exe() -> str:
    return sys.executable


def child_env(landing: Path, home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(TELEMETRY_OFF)
    env.update({
        "CSWH_LANDING_DIR": str(landing),
        "CSWH_WAREHOUSE_DIR": str(home / "warehouse"),
        "CSWH_REPORTS_DIR": str(home / "reports"),
        "CSWH_OUTBOX_DIR": str(home / "outbox"),
        "CSWH_WORK_DB": str(home / "warehouse" / "work.duckdb"),
        "DAGSTER_HOME": str(home / "dagster_home"),
        "CSWH_PII_SALT": os.environ.get("CSWH_PII_SALT") or BENCH_SALT,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
    })
    # An SMTP server configured in the caller's shell must not receive benchmark snapshot mails.
    for key in [k for k in env if k.startswith("CSWH_SMTP")]:
        del env[key]
    # The DuckDB budget follows the landing folder; this process's own (for its empty default
    # landing) must not leak into a run on another one. A user's CSWH_DUCKDB_MEMORY_LIMIT stays.
    env.pop(MEMORY_BUDGET_VARIABLE, None)
    # The floor and its dbt compile are DuckDB's; only the pipeline's runs get the engine
    # (``--engine``), so a CSWH_ENGINE of the caller's shell does not leak into them.
    env.pop(ENGINE_VARIABLE, None)
    return env


# ------------------------------------------------------------------------------------ steps

def ensure_generated(cache_root: Path, scale: float, days: int, seed: int, start: date, logs: Path) -> tuple[Path, dict]:
    """The landing folder for these arguments, generating it (in a measured subprocess) if the
    cache has none. Returns (landing_dir, generation record)."""
    folder = cache_root / cache_key(scale, days, seed, start)
    landing = folder / "landing"
    record_path = folder / "generation.json"
    if landing.is_dir() and record_path.exists():
        record = json.loads(record_path.read_text(encoding="utf-8"))
        record["status"] = "cached"
        return landing, record
    tmp = folder / "landing.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    eprint(f"[bench] generating scale {scale:g}, {days} days from {start} (seed {seed}) into {landing}")
    cmd = [python_exe(), "-m", "dagster_project", "generate", "--out", str(tmp), "--scale", str(scale),
           "--start", start.isoformat(), "--days", str(days), "--seed", str(seed)]
    m = measure_command(f"generate {cache_key(scale, days, seed, start)}", cmd, env=child_env(tmp, folder / "gen-home"),
                        cwd=REPO_ROOT, log_path=logs / f"generate-{cache_key(scale, days, seed, start)}.log")
    shutil.rmtree(landing, ignore_errors=True)
    os.replace(tmp, landing)
    shutil.rmtree(folder / "gen-home", ignore_errors=True)
    files = [p for p in landing.rglob("*") if p.is_file()]
    record = {"seconds": m.seconds, "peak_rss_bytes": m.peak_rss_bytes, "files": len(files),
              "bytes": sum(p.stat().st_size for p in files), "generated_at": datetime.now(timezone.utc).isoformat()}
    record_path.write_text(json.dumps(record, indent=2), encoding="utf-8")
    record["status"] = "generated"
    return landing, record


def dagster_steps(reports_dir: Path, since: float) -> list[dict]:
    """Every step (and run planning) of the pipeline invocations recorded since ``since`` (unix
    seconds): `cs-warehouse run` writes reports/runs/run-*.steps.json, whichever Dagster instance
    (in-memory by default) held the event log."""
    out = []
    for path in sorted((reports_dir / "runs").glob("run-*.steps.json")):
        if path.stat().st_mtime < since - 1:
            continue
        for step in json.loads(path.read_text(encoding="utf-8"))["steps"]:
            if step["start"] >= since - 1:
                stage = "run planning" if step["status"] == "PLANNED" else stage_of_step(step["step_key"])
                out.append({**step, "stage": stage})
    return sorted(out, key=lambda s: s["start"])


def ingest_ledger_rows(work_db: Path) -> dict[str, int]:
    import duckdb

    if not work_db.exists():
        return {}
    con = duckdb.connect(str(work_db), read_only=True)
    try:
        rows = con.execute("""
            SELECT source, sum(rows_landed) FROM (
                SELECT *, row_number() OVER (PARTITION BY source, path ORDER BY ingested_at DESC) AS rn
                FROM raw._ingest_ledger) WHERE rn = 1 GROUP BY source""").fetchall()
        return {s: int(n or 0) for s, n in rows}
    except duckdb.Error:
        return {}
    finally:
        con.close()


def published_tables(published_db: Path) -> dict[str, int]:
    import duckdb

    con = duckdb.connect(str(published_db), read_only=True)
    try:
        names = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts' "
                                           "AND table_type = 'BASE TABLE' ORDER BY 1").fetchall()]
        return {n: con.execute(f'SELECT count(*) FROM marts."{n}"').fetchone()[0] for n in names}
    finally:
        con.close()


def instance_record(dagster_home: Path) -> dict:
    """What the runs wrote into the Dagster instance every run records into: per run its events,
    materializations and planning time (run created -> started), and the event log's size on disk
    (docs/operations.md#event-log-cost)."""
    import dagster as dg

    if not (dagster_home / "dagster.yaml").exists():
        return {}
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    runs = []
    for run in reversed(instance.get_runs()):
        record = instance.get_run_record_by_id(run.run_id)
        events = instance.all_logs(run.run_id)
        kinds = [e.dagster_event.event_type_value for e in events if e.dagster_event]
        planning = (record.start_time - record.create_timestamp.timestamp()) if record and record.start_time else None
        runs.append({"job": run.job_name, "run_id": run.run_id, "status": run.status.value, "events": len(events),
                     "materializations": kinds.count("ASSET_MATERIALIZATION"),
                     "check_evaluations": kinds.count("ASSET_CHECK_EVALUATION"),
                     "planning_seconds": planning})
    history = dagster_home / "history"
    size = sum(p.stat().st_size for p in history.rglob("*") if p.is_file()) if history.exists() else 0
    return {"runs": runs, "event_log_bytes": size}


def compile_manifest(target: Path, work_db: Path, env: dict, logs: Path, *,
                     full_refresh: bool = True) -> tuple[Path, Measurement]:
    """dbt's compiled SQL for the floor. ``full_refresh``: the SQL of a build from scratch (the
    incremental models' is_incremental() is false), which the full floor runs against its empty
    file. Without it, compiled against the work file a full floor left, the incremental models get
    their incremental SQL: what the one-day floor runs."""
    dbt = str(Path(sys.executable).with_name("dbt"))
    project = REPO_ROOT / "dbt"
    cmd = [dbt, "compile", *(["--full-refresh"] if full_refresh else []), "--project-dir", str(project),
           "--profiles-dir", str(project), "--target-path", str(target), "--log-path", str(target / "logs"), "--quiet"]
    cmd += dbt_vars_args()
    log_name = "dbt-compile.log" if full_refresh else "dbt-compile-one-day.log"
    m = measure_command("dbt compile (floor setup, not timed)", cmd, env={**env, "CSWH_WORK_DB": str(work_db)},
                        cwd=project, log_path=logs / log_name)
    return target / "manifest.json", m


def one_day_floor(work: Path, floor_dir: Path, full_landing: Path, new_files: list[str], env: dict, logs: Path,
                  tables: list[str]) -> tuple[Measurement, dict]:
    """The one-day run's floor: a copy of the full floor's work file (setup, not timed), the
    incremental SQL compiled against it (not timed), then the floor loading only the new day's
    files and running the same models, tests, gates and publish (timed)."""
    inc_dir = work / "floor-one-day"
    shutil.rmtree(inc_dir, ignore_errors=True)
    inc_dir.mkdir(parents=True)
    from benchmarks.floor import FLOOR_DB_NAME

    shutil.copy2(floor_dir / FLOOR_DB_NAME, inc_dir / FLOOR_DB_NAME)
    manifest, _ = compile_manifest(work / "dbt-target-one-day", inc_dir / FLOOR_DB_NAME, env, logs,
                                   full_refresh=False)
    listing = inc_dir / "new-files.txt"
    listing.write_text("\n".join(new_files) + "\n", encoding="utf-8")
    warm_page_cache(full_landing)
    result_path = inc_dir / "result.json"
    cmd = [python_exe(), "-m", "benchmarks.floor", "--landing", str(full_landing), "--out", str(inc_dir),
           "--manifest", str(manifest), "--result", str(result_path), "--only-files", str(listing)]
    if tables:
        cmd += ["--tables", ",".join(tables)]
    eprint("[bench] one-day floor: python -m benchmarks.floor --only-files")
    m = measure_command("one-day floor", cmd, env=env, cwd=REPO_ROOT, log_path=logs / "floor-one-day.log")
    return m, json.loads(result_path.read_text(encoding="utf-8"))


def dbt_vars_args() -> list[str]:
    """The ``--vars`` the pipeline passes to dbt, if its dbt module exposes them."""
    try:
        from dagster_project.lib.transform import dbt_project
    except ImportError:
        return []
    fn = getattr(dbt_project, "dbt_vars", None)
    if callable(fn):
        try:
            vars_ = fn()
        except TypeError:
            return []
        if vars_:
            return ["--vars", json.dumps(vars_)]
    return []


def measure_one_day_floor(work: Path, floor_dir: Path, full_landing: Path, new_files: list[str], env: dict,
                          logs: Path, tables: list[str], published_db: Path, inc_m: Measurement,
                          notes: list[str]) -> dict:
    """The one-day floor's time, its ratio and whether its marts equal the one-day run's."""
    from benchmarks.floor import compare_marts

    try:
        m, result = one_day_floor(work, floor_dir, full_landing, new_files, env, logs, tables)
    except (CommandFailed, OSError, ValueError) as exc:
        notes.append(f"one-day floor failed: {str(exc).splitlines()[0]}")
        return {}
    comparisons = compare_marts(published_db, Path(result["published_db"]), tables=tables or None)
    differing = [f"{c.table} ({c.problem or 'differs'})" for c in comparisons if not c.equal]
    if differing:
        notes.append("one-day floor's marts differ from the one-day run's: " + ", ".join(differing))
    return {"floor_seconds": m.seconds, "floor_peak_rss_bytes": m.peak_rss_bytes,
            "ratio": report.ratio(inc_m.seconds, m.seconds),
            "floor_stages": {s["name"]: round(s["seconds"], 3) for s in result.get("stages", [])},
            "floor_equals_run": {"tables": len(comparisons), "tables_equal": len(comparisons) - len(differing),
                                 "differing": differing}}


def build_stage_rows(steps: list[dict], run_m: Measurement, floor_result: dict | None, floor_m: Measurement | None,
                     rows: dict[str, int | None], snapshot_m: Measurement | None, gen: dict) -> list[dict]:
    """One row per stage: pipeline time = sum of its steps' durations; peak = highest tree sample
    during those steps; floor time/peak from the floor's own stage clock."""
    by_stage: dict[str, list[dict]] = {}
    for s in steps:
        by_stage.setdefault(s["stage"], []).append(s)
    floor_by = {s["name"]: s for s in (floor_result or {}).get("stages", [])}
    order = ["generate", "run planning"] + [f"ingest:{s}" for s in SOURCES] + ["dbt", "gates", "publish"]
    order += sorted(k for k in by_stage if k not in order)
    out = []
    gen_note = "cached (measured when generated)" if gen.get("status") == "cached" else "generated now"
    out.append(report.enrich_stage({"stage": "generate", "seconds": gen.get("seconds"), "rows": rows.get("generate"),
                                    "peak_rss_bytes": gen.get("peak_rss_bytes"), "floor_seconds": None,
                                    "floor_peak_rss_bytes": None, "note": gen_note}))
    for stage in order[1:]:
        stage_steps = by_stage.get(stage, [])
        fl = floor_by.get(stage)
        if not stage_steps and not fl:
            continue
        seconds = sum(s["end"] - s["start"] for s in stage_steps) if stage_steps else None
        peaks = [run_m.peak_between(s["start"], s["end"]) for s in stage_steps]
        peaks = [p for p in peaks if p is not None]
        row = {"stage": stage, "seconds": seconds, "rows": rows.get(stage),
               "peak_rss_bytes": max(peaks) if peaks else None,
               "floor_seconds": fl["seconds"] if fl else None,
               "floor_peak_rss_bytes": floor_m.peak_between(fl["started_at"], fl["ended_at"]) if fl and floor_m else None,
               "steps": [s["step_key"] for s in stage_steps],
               "note": ""}
        if stage == "run planning":
            row["note"] = "Dagster: run creation to run start (planned events per asset x partition)"
        elif stage == "dbt":
            row["note"] = "seeds + models + dbt tests"
        elif stage == "gates":
            row["note"] = "GX suites (floor: SQL aggregates)"
        out.append(report.enrich_stage(row))
    step_total = sum(s["end"] - s["start"] for s in steps)
    floor_stage_total = sum(s["seconds"] for s in (floor_result or {}).get("stages", []))
    out.append(report.enrich_stage({
        "stage": "overhead", "seconds": max(run_m.seconds - step_total, 0.0), "rows": None,
        "peak_rss_bytes": None,
        "floor_seconds": (floor_m.seconds - floor_stage_total) if floor_m else None, "floor_peak_rss_bytes": None,
        "note": "process start, imports, definitions, run setup, between steps"}))
    if snapshot_m is not None:
        out.append(report.enrich_stage({"stage": "snapshot", "seconds": snapshot_m.seconds, "rows": rows.get("snapshot"),
                                        "peak_rss_bytes": snapshot_m.peak_rss_bytes, "floor_seconds": None,
                                        "floor_peak_rss_bytes": None,
                                        "note": "separate command; no floor (not in the total)"}))
    return out


def prefix_landing(full_landing: Path, new_day: date, target: Path) -> list[str]:
    """``target`` = every file of ``full_landing`` except the daily files of ``new_day`` (hard
    links: landing files are immutable). Returns the held-back files, relative paths."""
    shutil.rmtree(target, ignore_errors=True)
    held_back = []
    for path in sorted(full_landing.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(full_landing).as_posix()
        if is_new_day_file(rel, new_day):
            held_back.append(rel)
            continue
        dst = target / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, dst)
        except OSError:
            shutil.copy2(path, dst)
    return held_back


# ------------------------------------------------------------------------------------ main

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="cs-warehouse bench", description="The scale benchmark against its DuckDB-only floor.")
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--days", type=int, default=730)
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--start", type=date.fromisoformat, default=DEFAULT_START)
    p.add_argument("--cache", type=Path, default=None, help="generated-data cache ($CSWH_BENCH_CACHE, data/bench-cache)")
    p.add_argument("--work", type=Path, default=None, help="scratch folder ($CSWH_BENCH_WORK, data/bench-work)")
    p.add_argument("--out", type=Path, default=None, help="output folder ($CSWH_REPORTS_DIR/bench)")
    p.add_argument("--no-incremental", action="store_true", help="skip the one-day incremental run")
    p.add_argument("--no-snapshot", action="store_true", help="skip the monthly snapshot")
    p.add_argument("--engine", choices=ENGINES, default="duckdb",
                   help="where the pipeline's dbt builds (CSWH_ENGINE); the floor is DuckDB's either way")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cache_root = resolve_path(args.cache or os.environ.get("CSWH_BENCH_CACHE", "data/bench-cache"))
    work_root = resolve_path(args.work or os.environ.get("CSWH_BENCH_WORK", "data/bench-work"))
    out_dir = resolve_path(args.out or Path(os.environ.get("CSWH_REPORTS_DIR", "data/reports")) / "bench")
    key = cache_key(args.scale, args.days, args.seed, args.start)
    work = work_root / key
    shutil.rmtree(work, ignore_errors=True)
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")

    # One generation of N+1 days: the full run sees the first N days (the day N+1 files held back),
    # the incremental run then sees all of them, so the first N days are the same files by
    # construction. (Generating N and N+1 days separately does not give identical first-N-day files
    # with this generator: its random streams depend on the length of the range.)
    new_day = last_day(args.start, args.days) + timedelta(days=1)
    full_landing, gen = ensure_generated(cache_root, args.scale, args.days + 1, args.seed, args.start, logs)
    landing = work / "landing"
    held_back = prefix_landing(full_landing, new_day, landing)
    if not held_back:
        notes.append(f"no landing files for {new_day}: the incremental run adds nothing")

    # dbt's parse of the project (the manifest Dagster's definitions load) is setup, like the floor's
    # `dbt compile`: a checkout parses once and every later run reuses it, so neither is timed.
    from dagster_project.lib.transform.dbt_project import prepare_manifest

    prepare_manifest()
    warm_page_cache(landing)

    # --- the pipeline, as users run it
    home = work / "pipeline"
    env = child_env(landing, home)
    pipeline_env = {**env, ENGINE_VARIABLE: args.engine}
    eprint(f"[bench] pipeline ({args.engine}): python -m dagster_project run  (log {logs / 'pipeline.log'})")
    run_started = time.time()
    run_m = measure_command("pipeline run", [python_exe(), "-m", "dagster_project", "run"], env=pipeline_env, cwd=REPO_ROOT,
                            log_path=logs / "pipeline.log", check=False)
    completed = run_m.returncode == 0
    steps = dagster_steps(home / "reports", run_started)
    if not completed:
        notes.append(f"the pipeline run exited with {run_m.returncode} (see {run_m.log_path})")
    work_db = home / "warehouse" / "work.duckdb"
    published_db = home / "warehouse" / "published.duckdb"
    ledger = ingest_ledger_rows(work_db)
    pub_counts = published_tables(published_db) if published_db.exists() else {}

    snapshot_m = None
    if not args.no_snapshot and completed:
        period = last_full_month(args.start, args.days)
        eprint(f"[bench] snapshot --period {period}")
        snapshot_m = measure_command("snapshot", [python_exe(), "-m", "dagster_project", "snapshot", "--period", period],
                                     env=pipeline_env, cwd=REPO_ROOT, log_path=logs / "snapshot.log", check=False)
        if snapshot_m.returncode != 0:
            notes.append(f"snapshot exited with {snapshot_m.returncode} (see {snapshot_m.log_path})")

    # --- the floor
    floor_result, floor_m, comparisons = None, None, []
    floor_dir = work / "floor"
    try:
        manifest, _ = compile_manifest(work / "dbt-target", work_db, env, logs)
        warm_page_cache(landing)
        eprint("[bench] floor: python -m benchmarks.floor")
        result_path = floor_dir / "result.json"
        cmd = [python_exe(), "-m", "benchmarks.floor", "--landing", str(landing), "--out", str(floor_dir),
               "--manifest", str(manifest), "--result", str(result_path)]
        if pub_counts:
            cmd += ["--tables", ",".join(pub_counts)]
        floor_m = measure_command("floor", cmd, env=env, cwd=REPO_ROOT, log_path=logs / "floor.log")
        floor_result = json.loads(result_path.read_text(encoding="utf-8"))
        if published_db.exists():
            from benchmarks.floor import compare_marts, differing_columns

            # The tables published by the run itself (a later snapshot may add its history table).
            comparisons = compare_marts(published_db, Path(floor_result["published_db"]), tables=list(pub_counts) or None)
            for c in comparisons:
                if not c.equal and c.problem is None:
                    c.problem = "differing columns: " + ", ".join(
                        differing_columns(published_db, Path(floor_result["published_db"]), c.table))
    except CommandFailed as exc:
        notes.append(f"floor failed: {str(exc).splitlines()[0]}")
        eprint(str(exc))

    # Rows per stage: landed rows for ingest; the same definitions for pipeline and floor.
    floor_stages = {s["name"]: s for s in (floor_result or {}).get("stages", [])}
    rows: dict[str, int | None] = {f"ingest:{s}": ledger.get(s) for s in SOURCES}
    if not ledger and floor_stages:
        rows.update({k: v["rows"] for k, v in floor_stages.items() if k.startswith("ingest:")})
    rows["generate"] = sum(v for k, v in rows.items() if k.startswith("ingest:") and v) or None
    rows["dbt"] = floor_stages.get("dbt", {}).get("rows") or rows["generate"]
    rows["gates"] = floor_stages.get("gates", {}).get("rows")
    rows["publish"] = sum(pub_counts.values()) if pub_counts else floor_stages.get("publish", {}).get("rows")

    def write_doc(incremental: dict, *, final: bool) -> dict:
        stages = build_stage_rows(steps, run_m, floor_result, floor_m, rows, snapshot_m, gen)
        total = report.enrich_stage({"stage": "total", "seconds": run_m.seconds, "rows": rows.get("generate"),
                                     "peak_rss_bytes": run_m.peak_rss_bytes,
                                     "floor_seconds": floor_m.seconds if floor_m else None,
                                     "floor_peak_rss_bytes": floor_m.peak_rss_bytes if floor_m else None})
        equal = [c for c in comparisons if c.equal]
        eq = {"passed": bool(comparisons) and len(equal) == len(comparisons), "tables": len(comparisons),
              "tables_equal": len(equal), "differing": [f"{c.table} ({c.problem})" for c in comparisons if not c.equal],
              "comparisons": [vars(c) for c in comparisons]}
        peak = max(run_m.peak_rss_bytes, (snapshot_m.peak_rss_bytes if snapshot_m else 0))
        doc = {
            "dagster_instance": instance_record(home / "dagster_home"),
            "scale": args.scale, "days": args.days, "seed": args.seed, "start": args.start.isoformat(),
            "engine": args.engine,
            "started_at": started_at, "complete": final, "landing_dir": str(landing), "work_dir": str(work),
            "machine": report.machine_info(), "versions": report.versions(),
            "generation": gen, "pipeline": {**run_m.as_dict(), "steps": steps},
            "snapshot": snapshot_m.as_dict() if snapshot_m else None,
            "floor": {**(floor_m.as_dict() if floor_m else {}), "result": floor_result},
            "stages": stages, "total": total, "incremental": incremental,
            "floor_equals_pipeline": eq,
            "targets": report.evaluate_targets(args.scale, total["ratio"], peak, incremental.get("share"),
                                               completed, incremental.get("ratio")),
            "notes": list(notes) + ([] if final else ["partial: written before the incremental run"]),
        }
        report.write_outputs(doc, out_dir)
        return doc

    # A first report before the incremental run (which repeats a whole pipeline run), so a long
    # benchmark leaves its main numbers behind even if it is stopped during that run.
    incremental: dict = {}
    will_run_incremental = not args.no_incremental and completed
    write_doc({"pending": True} if will_run_incremental else {}, final=not will_run_incremental)

    # --- the one-day incremental run
    if will_run_incremental:
        try:
            inc_env = {**child_env(full_landing, home), ENGINE_VARIABLE: args.engine}
            warm_page_cache(full_landing)
            eprint(f"[bench] incremental run: +{len(held_back)} files for {new_day}")
            inc_started = time.time()
            inc_m = measure_command("incremental run", [python_exe(), "-m", "dagster_project", "run"], env=inc_env,
                                    cwd=REPO_ROOT, log_path=logs / "incremental.log", check=False)
            inc_steps = dagster_steps(home / "reports", inc_started)
            incremental = {"new_day": new_day.isoformat(), "new_files": len(held_back), "seconds": inc_m.seconds,
                           "peak_rss_bytes": inc_m.peak_rss_bytes, "returncode": inc_m.returncode,
                           "share": inc_m.seconds / run_m.seconds, "ratio": None, "floor_seconds": None,
                           "steps": {s["step_key"]: round(s["end"] - s["start"], 3) for s in inc_steps}}
            if inc_m.returncode != 0:
                # A killed or failed run's time is not the incremental cost.
                incremental["share"] = None
                notes.append(f"incremental run exited with {inc_m.returncode} after {inc_m.seconds:.0f} s "
                             f"(see {inc_m.log_path})")
            elif floor_result is not None:
                incremental.update(measure_one_day_floor(work, floor_dir, full_landing, held_back, env, logs,
                                                         list(pub_counts), published_db, inc_m, notes))
        except (CommandFailed, RuntimeError, OSError) as exc:
            incremental = {"error": str(exc).splitlines()[0]}
            notes.append(f"incremental run not measured: {str(exc).splitlines()[0]}")

    doc = write_doc(incremental, final=True)
    json_path, md_path = out_dir / f"bench-{args.scale:g}.json", out_dir / f"bench-{args.scale:g}.md"
    print(report.markdown(doc))
    print(f"JSON: {json_path}\nMarkdown: {md_path}")
    return 0 if completed and doc["floor_equals_pipeline"]["passed"] else 1


if __name__ == "__main__":
    sys.path.insert(0, str(REPO_ROOT))
    raise SystemExit(main(sys.argv[1:]))
