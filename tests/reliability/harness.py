"""Helpers of the kill and concurrency tests: child processes that can be killed, and the checks
a BI reader would make on the published file."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from dagster_project.settings import REPO_ROOT, Settings


def child_env(settings: Settings, **extra: str) -> dict[str, str]:
    return {**settings.child_env(), **extra}


def start(code: str, settings: Settings, **extra: str) -> subprocess.Popen:
    """A Python child running ``code`` with the settings' environment; stderr is a pipe."""
    return subprocess.Popen([sys.executable, "-c", code], cwd=REPO_ROOT, env=child_env(settings, **extra),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for_line(proc: subprocess.Popen, marker: str, timeout: float = 60) -> str | None:
    """Read the child's stderr until a line contains ``marker`` (None if it ended first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            return None
        if marker in line:
            return line
    raise TimeoutError(f"no line with {marker!r} within {timeout} s")


def kill(proc: subprocess.Popen) -> bool:
    """SIGKILL; True if the child was still running (the kill interrupted something)."""
    alive = proc.poll() is None
    if alive:
        proc.kill()
    proc.wait()
    proc.stderr.close()
    return alive


def read_published(path: Path) -> tuple[str, dict[str, int], dict[str, int]]:
    """(run id, manifest row counts, actual row counts) read in ONE read-only connection."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        run_id, counts = con.execute("SELECT run_id, row_counts FROM meta.publish_manifest").fetchone()
        counts = json.loads(counts) if isinstance(counts, str) else counts
        actual = {t: con.execute(f'SELECT count(*) FROM marts."{t}"').fetchone()[0] for t in counts}
        return run_id, counts, actual
    finally:
        con.close()


PUBLISH_CODE = """
import sys
from dagster_project.settings import Settings
from dagster_project.lib.publish.publish import publish
publish(Settings.from_env(), sys.argv[1] if len(sys.argv) > 1 else {run_id!r}, {{"checks": []}}, [])
"""

INGEST_CODE = """
from dagster_project.settings import Settings
from dagster_project.lib.ingest.loader import ingest_all_files
ingest_all_files(Settings.from_env(), run_id={run_id!r}, progress=True)
"""
