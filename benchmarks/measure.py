"""Wall time and peak resident memory of a whole process tree.

The pipeline runs as ``python -m dagster_project run`` and may start children (dbt is invoked in
process by dagster-dbt today, but a future version or a multiprocess executor would fork), so the
memory that counts is the sum over the process and all its descendants, sampled in a background
thread. The sampler keeps a timeline ``(unix_time, rss_bytes)`` so that a stage's peak can be read
afterwards from its start/end times (Dagster step stats give those).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence, TypeVar

import psutil

T = TypeVar("T")

DEFAULT_INTERVAL_SECONDS = 0.05


def tree_rss_bytes(root: psutil.Process) -> int:
    """Resident memory of ``root`` plus every live descendant; processes that exit while we look
    are skipped (they no longer hold memory)."""
    total = 0
    try:
        procs = [root, *root.children(recursive=True)]
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


def peak_in_window(timeline: Sequence[tuple[float, int]], start: float, end: float) -> int | None:
    """Highest sample taken between ``start`` and ``end`` (unix seconds). A stage shorter than the
    sampling interval may hold no sample: then the nearest sample before its end stands in."""
    inside = [rss for t, rss in timeline if start <= t <= end]
    if inside:
        return max(inside)
    before = [rss for t, rss in timeline if t <= end]
    return before[-1] if before else None


class TreeSampler:
    """Samples the RSS of a process tree every ``interval`` seconds until stopped."""

    def __init__(self, pid: int, interval: float = DEFAULT_INTERVAL_SECONDS):
        self.root = psutil.Process(pid)
        self.interval = interval
        self.timeline: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rss-sampler-{pid}", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = tree_rss_bytes(self.root)
            if rss:
                self.timeline.append((time.time(), rss))
            self._stop.wait(self.interval)

    def start(self) -> "TreeSampler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_bytes(self) -> int:
        return max((rss for _, rss in self.timeline), default=0)


@dataclass
class Measurement:
    label: str
    seconds: float
    peak_rss_bytes: int
    started_at: float  # unix seconds
    ended_at: float
    returncode: int | None = None
    timeline: list[tuple[float, int]] = field(default_factory=list, repr=False)
    log_path: str | None = None

    def peak_between(self, start: float, end: float) -> int | None:
        return peak_in_window(self.timeline, start, end)

    def as_dict(self) -> dict:
        return {"label": self.label, "seconds": round(self.seconds, 3), "peak_rss_bytes": self.peak_rss_bytes,
                "returncode": self.returncode, "log": self.log_path}


class CommandFailed(RuntimeError):
    def __init__(self, measurement: Measurement, cmd: Sequence[str]):
        tail = ""
        if measurement.log_path and Path(measurement.log_path).exists():
            lines = Path(measurement.log_path).read_text(encoding="utf-8", errors="replace").splitlines()
            tail = "\n".join(lines[-40:])
        super().__init__(f"{measurement.label}: `{' '.join(cmd)}` exited with {measurement.returncode} "
                         f"(log {measurement.log_path}); last lines:\n{tail}")
        self.measurement = measurement


def measure_command(label: str, cmd: Sequence[str], *, env: Mapping[str, str], cwd: Path, log_path: Path,
                    check: bool = True, interval: float = DEFAULT_INTERVAL_SECONDS) -> Measurement:
    """Run ``cmd`` with stdout+stderr into ``log_path``; wall time and the tree's peak RSS."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        started_at = time.time()
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(cmd), env=dict(env), cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        sampler = TreeSampler(proc.pid, interval).start()
        try:
            returncode = proc.wait()
        finally:
            sampler.stop()
        seconds = time.perf_counter() - t0
    m = Measurement(label=label, seconds=seconds, peak_rss_bytes=sampler.peak_bytes, started_at=started_at,
                    ended_at=started_at + seconds, returncode=returncode, timeline=sampler.timeline,
                    log_path=str(log_path))
    if check and returncode != 0:
        raise CommandFailed(m, cmd)
    return m


def measure_call(label: str, fn: Callable[[], T], *, interval: float = DEFAULT_INTERVAL_SECONDS) -> tuple[T, Measurement]:
    """Run ``fn`` in this process; the peak is this process tree's RSS while it ran (so it includes
    whatever the caller already held)."""
    sampler = TreeSampler(os.getpid(), interval).start()
    started_at = time.time()
    t0 = time.perf_counter()
    try:
        result = fn()
    finally:
        sampler.stop()
    seconds = time.perf_counter() - t0
    return result, Measurement(label=label, seconds=seconds, peak_rss_bytes=sampler.peak_bytes,
                               started_at=started_at, ended_at=started_at + seconds, timeline=sampler.timeline)
