"""The Dagster instance every command records into: ``$DAGSTER_HOME`` (default ``data/dagster_home``).

- ``prepare_dagster_home`` writes ``dagster.yaml`` from ``config/dagster.yaml`` (telemetry off, the
  event log of ``defs/storage.py``, one writer at a time on the work DuckDB file).
- ``open_instance`` opens it and first settles what earlier processes left behind: a run whose
  process is gone (killed with -9, out of memory) is still "started" in the instance and may still
  hold a slot of the ``work_duckdb`` pool, which would make every later step wait for it. Such a run
  is marked failed, with the reason, and its slots are freed. CLI runs carry the pid, host and start
  time of their process in their tags (``process_tags``), so a run is only declared dead when its
  own process is.
- ``active_runs`` lists the runs that are really running (exit code 4 of ``cs-warehouse run``).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import dagster as dg
import psutil

from dagster_project.settings import REPO_ROOT, Settings, eprint

INSTANCE_TEMPLATE = REPO_ROOT / "config" / "dagster.yaml"
PID_TAG = "cswh/pid"
HOST_TAG = "cswh/host"
PROCESS_START_TAG = "cswh/process_started"
LAUNCHED_BY_TAG = "cswh/launched_by"


def instance_yaml(settings: Settings) -> str:
    return INSTANCE_TEMPLATE.read_text(encoding="utf-8").replace("{dagster_home}", str(settings.dagster_home))


def prepare_dagster_home(settings: Settings) -> None:
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    target = settings.dagster_home / "dagster.yaml"
    wanted = instance_yaml(settings)
    if not target.exists() or target.read_text(encoding="utf-8") != wanted:
        tmp = target.with_name(f".dagster.yaml.{os.getpid()}.tmp")
        tmp.write_text(wanted, encoding="utf-8")
        os.replace(tmp, target)


def process_tags(launched_by: str) -> dict[str, str]:
    """Tags that tie a run to the process executing it (``settle_dead_runs`` reads them)."""
    me = psutil.Process()
    return {PID_TAG: str(me.pid), HOST_TAG: socket.gethostname(),
            PROCESS_START_TAG: f"{me.create_time():.2f}", LAUNCHED_BY_TAG: launched_by}


def _process_alive(tags) -> bool | None:
    """True/False for a run of a process on this host; None when the run is not ours to judge
    (another host, or launched by the daemon, whose run monitoring watches it)."""
    if tags.get(HOST_TAG) != socket.gethostname() or not str(tags.get(PID_TAG, "")).isdigit():
        return None
    try:
        proc = psutil.Process(int(tags[PID_TAG]))
        return f"{proc.create_time():.2f}" == tags.get(PROCESS_START_TAG) and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@dataclass(frozen=True)
class SettledRun:
    run_id: str
    job_name: str
    pid: str


def settle_dead_runs(instance) -> list[SettledRun]:
    """Mark runs whose process died as failed (with the reason) and free their pool slots."""
    settled = []
    unfinished = instance.get_runs(filters=dg.RunsFilter(statuses=[
        dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]))
    for run in unfinished:
        if _process_alive(run.tags) is not False:
            continue
        instance.report_run_failed(run, message=(
            f"The process that ran this run (pid {run.tags.get(PID_TAG)} on {run.tags.get(HOST_TAG)}) is gone: "
            "it was killed or crashed before the run ended. Marked failed by cs-warehouse at the next start; "
            "the work file and the published file are as the run's last committed step left them."))
        if instance.event_log_storage.supports_global_concurrency_limits:
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        settled.append(SettledRun(run.run_id, run.job_name, str(run.tags.get(PID_TAG))))
    return settled


def active_runs(instance) -> list:
    """Runs in progress whose process is alive (or that the daemon launched and still watches)."""
    runs = instance.get_runs(filters=dg.RunsFilter(statuses=[
        dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
        dg.DagsterRunStatus.CANCELING]))
    return [r for r in runs if _process_alive(r.tags) is not False]


def open_instance(settings: Settings):
    """The persistent instance under ``settings.dagster_home``, with dead runs settled."""
    prepare_dagster_home(settings)
    instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
    for run in settle_dead_runs(instance):
        eprint(f"[run] an earlier run ({run.job_name} {run.run_id[:8]}, pid {run.pid}) died without ending; "
               "marked it failed and freed its slots")
    return instance
