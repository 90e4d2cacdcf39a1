"""Kill -9 of the whole pipeline (`python -m dagster_project run`) while dbt builds and while the
gate runs: the published file stays the version it was (byte for byte) or there is none, the work
file reopens, and the next run completes and publishes with no duplicate rows.

The ingest and publish windows are killed in test_kill.py with finer aim; together they cover every
stage."""

from __future__ import annotations

import hashlib
import random
import subprocess
import sys
import time

import duckdb

from dagster_project.settings import REPO_ROOT
from tests.conftest import make_settings
from tests.reliability.harness import child_env, kill, read_published, wait_for_line
from tests.reliability.test_kill import assert_raw_matches_ledger, kill_landing  # noqa: F401 (fixture)

MART_KEYS = {
    "mart_stage_satisfaction": "branch_code, stage, month",
    "mart_claim_cycle": "branch_code, month",
    "mart_complaints": "branch_code, month",
    "mart_call_center_daily": "day, queue",
    "dim_customer_segment": "customer_key",
}


def start_pipeline(settings) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dagster_project", "run"], cwd=REPO_ROOT,
                            env=child_env(settings), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def sha256(path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def run_to_completion(settings) -> None:
    proc = start_pipeline(settings)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]


def kill_at(settings, marker: str, rng: random.Random, max_delay: float) -> bool:
    proc = start_pipeline(settings)
    assert wait_for_line(proc, marker, timeout=300), f"the run ended before {marker!r}"
    time.sleep(rng.uniform(0.0, max_delay))
    return kill(proc)


def assert_marts_unique(settings) -> None:
    con = duckdb.connect(str(settings.published_db), read_only=True)
    try:
        for table, key in MART_KEYS.items():
            dupes = con.execute(f"select count(*) from (select {key} from marts.{table} "
                                "group by all having count(*) > 1)").fetchone()[0]
            assert dupes == 0, f"{table}: duplicate {key}"
    finally:
        con.close()


def test_kill_during_dbt_and_gate_then_the_next_run_publishes(kill_landing, tmp_path):
    rng = random.Random(7)
    settings = make_settings(tmp_path / "wh", landing=kill_landing)
    interrupted = 0

    # 1. Killed while dbt builds, before anything was ever published: still nothing published.
    interrupted += kill_at(settings, "[step] cs_dbt_assets ...", rng, max_delay=3.0)
    assert not settings.published_db.exists()
    # 2. Killed while the gate validates the marts.
    interrupted += kill_at(settings, "[step] gx_marts ...", rng, max_delay=0.5)
    assert not settings.published_db.exists()
    # 3. The next run completes and publishes.
    run_to_completion(settings)
    first_run, manifest_counts, actual = read_published(settings.published_db)
    assert manifest_counts == actual
    assert_marts_unique(settings)
    published = sha256(settings.published_db)
    raw_totals = assert_raw_matches_ledger(settings)

    # 4. Killed in dbt of a later run: the published version is untouched, byte for byte.
    interrupted += kill_at(settings, "[step] cs_dbt_assets ...", rng, max_delay=3.0)
    assert sha256(settings.published_db) == published
    assert read_published(settings.published_db)[0] == first_run
    # The work file reopens after the kills and raw holds exactly what the ledger committed.
    assert assert_raw_matches_ledger(settings) == raw_totals
    assert interrupted >= 3, "the kills should interrupt running pipelines"


def test_the_dbt_child_dies_with_the_process_that_started_it():
    """dbt runs as a subprocess of the pipeline; killed with -9, the pipeline must not leave it
    behind, building on (and locking) the work file (transform/dbt_child.py)."""
    import os
    import signal

    parent_code = (
        "import os, subprocess, sys, time\n"
        "os.environ['CSWH_DBT_PARENT_PID'] = str(os.getpid())\n"
        "child = subprocess.Popen([sys.executable, '-c', 'from dagster_project.lib.transform.dbt_child import "
        "die_with_parent; import time; die_with_parent(); time.sleep(120)'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_code], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    child_pid = int(parent.stdout.readline())
    time.sleep(1.0)  # the child has made its request
    os.kill(child_pid, 0)  # alive while its parent lives
    parent.kill()
    parent.wait()
    parent.stdout.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(child_pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(child_pid, signal.SIGKILL)
    raise AssertionError("the child outlived its killed parent")
