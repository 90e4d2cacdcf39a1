"""``cs-warehouse run``: the main job, the way the schedule runs it, from the command line.

A Dagster run targets one partitions definition, so the pipeline is three runs:

1. ``ingest_audits`` over the months that have audit workbooks (monthly partitions);
2. ``ingest_all`` over the days with new or changed landing files (five daily sources, with their
   raw-data gates);
3. ``build_and_publish``: every dbt model and test, the Great Expectations checks on the marts, and
   publish — one run, so the blocking checks gate the publish step. It only starts if the ingest
   run and its gates passed. (The scheduled ``daily_pipeline`` does 2 and 3 in one run for one day;
   for a backlog of days a partitioned run costs a minute of Dagster planning per two years.)

Then it prints a compact summary: rows per source, quarantined rows, checks, the published version
and a few headline KPIs. Exit code 0 only if everything succeeded and a version was published.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass, field

import duckdb

from dagster_project.settings import MEMORY_BUDGET_VARIABLE, Settings, eprint
from dagster_project.lib.ingest.loader import latest_ledger_entries
from dagster_project.defs.conventions import RANGE_END_TAG, RANGE_START_TAG
from dagster_project.lib.quality import gx_duckdb


@dataclass
class RunOutcome:
    job: str
    success: bool
    run_id: str
    seconds: float
    failed_steps: list[str] = field(default_factory=list)
    checks_passed: int = 0
    checks_failed: list[str] = field(default_factory=list)
    checks_warned: list[str] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)


def _partition_range(keys: list[str]) -> dict[str, str] | None:
    if not keys:
        return None
    ordered = sorted(keys)
    return {RANGE_START_TAG: ordered[0], RANGE_END_TAG: ordered[-1]}


def step_timings(instance, job_name: str, run_id: str) -> list[dict]:
    """Start/end (unix seconds) of the run's planning and of each step, for the run record that
    the benchmark reads (the event log itself may be in memory)."""
    steps = []
    record = instance.get_run_record_by_id(run_id)
    if record is not None and record.start_time and record.create_timestamp:
        created = record.create_timestamp.timestamp()
        steps.append({"run_id": run_id, "job": job_name, "step_key": f"{job_name} (run planning)",
                      "status": "PLANNED", "start": created, "end": max(record.start_time, created)})
    for stat in instance.get_run_step_stats(run_id):
        if stat.start_time is not None and stat.end_time is not None:
            steps.append({"run_id": run_id, "job": job_name, "step_key": stat.step_key,
                          "status": str(stat.status.value if stat.status else None),
                          "start": stat.start_time, "end": stat.end_time})
    return steps


def _ingest_op_config(job) -> dict:
    """Ingest steps load every readable file and report unreadable ones instead of failing the run,
    so one broken landing file does not hold back the other days' marts; the summary names the
    file and the command exits non-zero (the Dagster UI default stays strict)."""
    from dagster_project.defs.ingest.assets import INGEST_ASSETS

    ops = {asset.op.name for asset in INGEST_ASSETS} & {node.name for node in job.graph.node_defs}
    return {op: {"config": {"fail_on_unreadable_file": False}} for op in sorted(ops)}


def _run_job(job_name: str, tags: dict[str, str], instance, log_path) -> RunOutcome:
    from dagster import DagsterEventType

    from dagster_project.definitions import defs

    job = defs.resolve_job_def(job_name)
    scope = f"{tags[RANGE_START_TAG]} .. {tags[RANGE_END_TAG]}" if RANGE_START_TAG in tags else "all marts"
    eprint(f"[run] {job_name}: {scope}  (full log: {log_path})")
    started = time.monotonic()
    # dbt's own console output (hundreds of lines) goes to the run log; the terminal keeps the
    # compact step lines (stderr) and the summary.
    with open(log_path, "a", encoding="utf-8") as log, contextlib.redirect_stdout(log):
        result = job.execute_in_process(
            instance=instance,
            tags=tags,
            raise_on_error=False,
            run_config={"loggers": {"compact": {}}, "ops": _ingest_op_config(job)},
        )
    outcome = RunOutcome(job=job_name, success=result.success, run_id=result.run_id,
                         seconds=time.monotonic() - started)
    outcome.steps = step_timings(instance, job_name, result.run_id)
    for event in result.all_events:
        if event.event_type == DagsterEventType.STEP_FAILURE:
            outcome.failed_steps.append(f"{event.step_key}: {event.message}")
        elif event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
            if evaluation.passed:
                outcome.checks_passed += 1
                if str(getattr(evaluation, "severity", "")).endswith("WARN") and evaluation.metadata.get("warnings"):
                    outcome.checks_warned.append(name)
            else:
                outcome.checks_failed.append(name)
    return outcome


def ledger_hashes(settings: Settings) -> dict[str, str]:
    """Landing path -> sha256 of its latest ingest attempt, from the work file's ledger."""
    return {e["path"]: e["sha256"] for e in latest_ledger_entries(settings.work_db)}


def run_pipeline(settings: Settings) -> int:
    from dagster import DagsterInstance

    from dagster_project.lib.ingest import CONTRACTS
    from dagster_project.defs.ingest.assets import partitions_with_files
    from dagster_project.lib.ingest.landing import Fingerprints, candidate_paths
    from dagster_project.cli.instance import prepare_dagster_home

    from dagster_project.lib.ingest.guard import RunLock
    from dagster_project.lib.transform.dbt_project import salt_change_reason

    # Known conditions before anything starts: another run on this warehouse (exit 4), a PII salt
    # that differs from the one the marts were built with (exit 2, unless declared intended).
    lock = RunLock(settings.warehouse_dir, settings.work_db)  # noqa: F841 - held until the process ends
    salt_change_reason(settings)
    prepare_dagster_home(settings)
    settings.apply_to_environ()
    budget_source = ("CSWH_DUCKDB_MEMORY_LIMIT" if os.environ.get("CSWH_DUCKDB_MEMORY_LIMIT")
                     else "sized from the landing files")
    eprint(f"[run] DuckDB memory budget {os.environ.get(MEMORY_BUDGET_VARIABLE)} per database ({budget_source})")
    # By default a CLI run keeps its Dagster event log in memory: the local SQLite event log costs
    # 15-250 ms per event, and a run over two years of daily partitions writes thousands of events
    # (one materialization per source per day, one planned event per check), which measured as
    # minutes of pure overhead (benchmarks/). The summary and data/reports/runs/ keep the record;
    # CSWH_DAGSTER_INSTANCE=persistent records the run in $DAGSTER_HOME for `make dev` instead.
    if os.environ.get("CSWH_DAGSTER_INSTANCE", "ephemeral").lower() == "persistent":
        instance = DagsterInstance.from_config(str(settings.dagster_home))
    else:
        instance = DagsterInstance.ephemeral()
    outcomes: list[RunOutcome] = []
    log_dir = settings.reports_dir / "runs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"run-{time.strftime('%Y%m%dT%H%M%S')}.log"

    landed = ledger_hashes(settings)
    # Hashes of unchanged files come from the fingerprint cache; the ingest steps read the same
    # cache, so a file is hashed at most once per change.
    fingerprints = Fingerprints(settings.landing_dir, settings.fingerprints_file)

    def keys(partitioning: str) -> list[str]:
        """Partitions with a new or changed file; if there are none, the last partition with a file
        (its ingest is a no-op, and the build, gate and publish still run)."""
        contracts = [c for c in CONTRACTS.values() if c.partitioning == partitioning]
        pending = sorted({key for c in contracts for key, path in candidate_paths(settings.landing_dir, c)
                          if landed.get(path.relative_to(settings.landing_dir).as_posix())
                          != fingerprints.sha256(path)})
        if pending or partitioning == "monthly":
            return pending
        present = sorted({key for c in contracts for key in partitions_with_files(settings.landing_dir, c.source)})
        return present[-1:]

    months = _partition_range(keys("monthly"))
    days = _partition_range(keys("daily"))
    fingerprints.save()
    # After planning (imports and hashing want the interpreter), before the ingest runs (DuckDB).
    gx_duckdb.warm_up_in_background()
    if months:
        outcomes.append(_run_job("ingest_audits", months, instance, log_path))

    if not days:
        eprint(f"error: no daily landing files under {settings.landing_dir}")
        return 2
    ingest = _run_job("ingest_all", days, instance, log_path)
    outcomes.append(ingest)
    # The raw gates ran with the ingest: a failed one stops here, before anything is built or
    # published (as a blocking check would within one run).
    if all(o.success and not o.checks_failed for o in outcomes):
        outcomes.append(_run_job("build_and_publish", {}, instance, log_path))
    else:
        eprint("[run] ingest or a raw-data gate failed: not building or publishing")

    # A machine-readable record of the invocation next to its log (the benchmark reads it).
    log_path.with_suffix(".steps.json").write_text(json.dumps(
        {"runs": [{"job": o.job, "run_id": o.run_id, "success": o.success, "seconds": o.seconds}
                  for o in outcomes], "steps": [s for o in outcomes for s in o.steps]}, indent=1))

    from dagster_project.cli.summary import print_run_summary

    return print_run_summary(settings, outcomes)


def published_version(settings: Settings) -> dict | None:
    """The manifest row of the published file, read with a short-lived read-only connection."""
    if not settings.published_db.exists():
        return None
    con = duckdb.connect(str(settings.published_db), read_only=True)
    try:
        row = con.execute(
            "select * from meta.publish_manifest order by published_at desc limit 1").fetchone()
        if row is None:
            return None
        names = [d[0] for d in con.description]
        return dict(zip(names, row))
    finally:
        con.close()
