"""``cs-warehouse snapshot`` and ``cs-warehouse rollback``: through the definitions and the instance.

- ``snapshot --period YYYY-MM`` runs the ``monthly_snapshot`` job for the period's partition (history
  rows -> publish, gated by the mart checks in the same run -> report and e-mail), like the monthly
  schedule, and prints what its assets recorded. Exit 0 ok, 1 a step failed (what was saved stays
  saved; the next run retries), 2 no snapshot possible (no published file, no data for the period).
- ``rollback [--to VERSION] [--yes]`` restores the previous (or the named) kept version after the
  operator confirms, and records it as a materialization of ``published/marts``, so the Dagster UI
  shows the version BI reads.
"""

from __future__ import annotations

import contextlib
import time

import dagster as dg

from dagster_project.cli.instance import active_runs, open_instance, process_tags
from dagster_project.cli.outcome import failure_reason
from dagster_project.definitions import build_definitions
from dagster_project.defs.conventions import RESEND_TAG, SNAPSHOT_JOB
from dagster_project.defs.publish.assets import PUBLISHED_KEY, record_published_version
from dagster_project.defs.report.assets import BRANCH_REPORTS_KEY, HISTORY_KEY, REPORT_KEY
from dagster_project.lib.publish.publish import sha256_of
from dagster_project.lib.publish.versions import current_manifest, rollback
from dagster_project.settings import Settings, eprint


def _metadata(result, key: dg.AssetKey) -> dict:
    for event in result.get_asset_materialization_events():
        if event.asset_key == key:
            return {k: v.value for k, v in event.materialization.metadata.items()}
    return {}


def run_snapshot_job(settings: Settings, period: str, resend: bool = False) -> int:
    settings.activate()
    instance = open_instance(settings)
    if active_runs(instance):
        eprint(f"error: a run is in progress on this warehouse (instance {settings.dagster_home}); try again after it")
        return 4
    job = build_definitions(settings).resolve_job_def(SNAPSHOT_JOB)
    key = f"{period}-01"
    if not job.partitions_def.has_partition_key(key):
        eprint(f"error: snapshot {period}: no partition for that month (the landing data covers "
               f"{job.partitions_def.get_first_partition_key()[:7]} .. {job.partitions_def.get_last_partition_key()[:7]})")
        return 2
    tags = {**process_tags("cli"), **({RESEND_TAG: "true"} if resend else {})}
    settings.run_logs_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.run_logs_dir / f"snapshot-{period}-{time.strftime('%Y%m%dT%H%M%S')}.log"
    with open(log_path, "a", encoding="utf-8") as log, contextlib.redirect_stdout(log):
        result = job.execute_in_process(instance=instance, partition_key=key, tags=tags, raise_on_error=False,
                                        run_config={"loggers": {"compact": {}}})
    history, published, report, branches = (_metadata(result, k) for k in (HISTORY_KEY, PUBLISHED_KEY, REPORT_KEY,
                                                                           BRANCH_REPORTS_KEY))
    if history:
        state = "new" if history.get("new_revision") else "unchanged"
        print(f"snapshot {period}: revision {history.get('revision')} ({state}), {history.get('dagster/row_count')} rows")
        if history.get("new_revision") and history.get("revision_reason"):
            print(f"  revised: {history['revision_reason']}")
    if published:
        print(f"  publish: version {published.get('version_id')}")
    if report:
        print(f"  report:  {report.get('report')}")
        print(f"  csv:     {report.get('csv')}")
        print(f"  e-mail:  {report.get('email')}")
        if history.get("new_revision") and int(history.get("revision") or 1) > 1 and \
                str(report.get("email", "")).startswith("already sent"):
            print("  note: the corrected report was not e-mailed; run with --resend to send it")
        if report.get("not_in_published_file"):
            print(f"  not in the published file: {report['not_in_published_file']}")
    if branches:
        print(f"  branches: {branches.get('pages')} pages in {branches.get('folder')}")
        print(f"  branch e-mail: {branches.get('email')}")
    print(f"  run:     {result.run_id} (make dev: http://127.0.0.1:3000/runs/{result.run_id})")
    if result.success:
        return 0
    failures = [failure_reason(e) for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    for message in failures:
        eprint(f"error: {message[:300]}")
    return 2 if not history and any(f"snapshot {period}:" in (m or "") for m in failures) else 1


def ask(question: str) -> bool:
    """The operator's yes/no on the terminal; no answer (end of input, no terminal) is a no, so a
    script that forgot ``--yes`` changes nothing."""
    try:
        return input(question).strip().lower() in ("y", "yes")
    except EOFError:
        print()
        return False


def rollback_and_record(settings: Settings, to: str | None = None, yes: bool = False) -> int:
    code = rollback(settings, to=to, confirm=None if yes else ask)
    if code != 0:
        return code
    manifest = current_manifest(settings)
    instance = open_instance(settings)
    record_published_version(instance, manifest, sha256_of(settings.published_db), str(settings.published_db),
                             "rollback", f"cs-warehouse rollback restored version {manifest['version_id']}")
    return 0
