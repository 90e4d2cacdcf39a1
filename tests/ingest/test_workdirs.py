"""Ingest's scratch folders: a killed run's folder (TemporaryDirectory cannot clean up after SIGKILL,
and it may hold normalised landing rows) is removed by the next ingest; a running one's is not."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from dagster_project.lib.ingest.loader import WORKDIR_PREFIX, ingest_workdir, sweep_stale_workdirs


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_folder_of_a_killed_process_goes_and_a_running_ones_stays(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        killed = tmp_path / f"{WORKDIR_PREFIX}{dead_pid()}-abc123"
        running = tmp_path / f"{WORKDIR_PREFIX}{sleeper.pid}-def456"
        mine = tmp_path / f"{WORKDIR_PREFIX}{os.getpid()}-ghi789"
        unnamed = tmp_path / f"{WORKDIR_PREFIX}k3j4h5g6"  # an older run's name: no pid to judge by
        for folder in (killed, running, mine, unnamed):
            (folder / "calls").mkdir(parents=True)
            (folder / "calls" / "batch.csv").write_text("row\n")
        assert sweep_stale_workdirs(tmp_path) == [killed]
        assert not killed.exists() and running.exists() and mine.exists() and unnamed.exists()
        sleeper.send_signal(signal.SIGKILL)
        sleeper.wait()
        assert sweep_stale_workdirs(tmp_path) == [running]
    finally:
        sleeper.kill()


def test_an_ingest_workdir_is_named_after_its_process_and_removed_on_exit():
    with ingest_workdir() as workdir:
        assert os.path.basename(workdir).startswith(f"{WORKDIR_PREFIX}{os.getpid()}-")
        assert os.path.isdir(workdir)
    assert not os.path.exists(workdir)
