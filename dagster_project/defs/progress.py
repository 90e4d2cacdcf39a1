"""A compact Dagster logger for the command line: one line per step start/finish/failure and the
assets' own progress messages, instead of Dagster's full debug event stream (which the run's event
log in the instance keeps whole)."""

from __future__ import annotations

import logging
import sys
import time

import dagster as dg

_SHOWN_EVENTS = {"STEP_START", "STEP_SUCCESS", "STEP_FAILURE", "ASSET_CHECK_EVALUATION", "RUN_FAILURE"}
# dagster-dbt's own bookkeeping lines (which selection it passes, the partial-parse cache it copies,
# the command it starts and ends): they stay in the run's event log and its log file; the console
# shows the dbt step's progress line instead. Captured library logs look like the assets' own, so
# they are told apart by their text.
_QUIET_PREFIXES = ("A dbt subsetted execution is not being performed", "Copying `", "Running dbt command",
                   "Finished dbt command")


class CompactHandler(logging.Handler):
    def __init__(self, stream=None):
        super().__init__(level=logging.DEBUG)
        self.stream = stream or sys.stderr
        self.step_started: dict[str, float] = {}

    def format_record(self, record: logging.LogRecord) -> str | None:
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        step = meta.get("step_key") or ""
        message = meta.get("orig_message") or record.getMessage()
        if event is None:
            # Messages an asset logged itself (progress lines, warnings).
            if record.levelno < logging.INFO or (record.levelno < logging.WARNING and message.startswith(_QUIET_PREFIXES)):
                return None
            return f"  [{step}] {message}"
        kind = event.event_type_value
        if kind not in _SHOWN_EVENTS:
            return None
        if kind == "STEP_START":
            self.step_started[step] = time.monotonic()
            return f"[step] {step} ..."
        if kind == "STEP_SUCCESS":
            seconds = time.monotonic() - self.step_started.get(step, time.monotonic())
            return f"[step] {step} done in {seconds:.1f}s"
        if kind == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            if data.passed:
                return None
            return f"  [check FAILED] {data.asset_key.to_user_string()}:{data.check_name}"
        return f"[step] {step or 'run'} FAILED: {message}"

    def emit(self, record: logging.LogRecord) -> None:
        line = self.format_record(record)
        if line:
            print(f"{time.strftime('%H:%M:%S')} {line}", file=self.stream, flush=True)


@dg.logger(description="One line per step and the assets' progress messages (used by cs-warehouse run).")
def compact_logger(init_context) -> logging.Logger:
    log = logging.Logger("cs_warehouse", level=logging.DEBUG)
    log.addHandler(CompactHandler())
    return log
