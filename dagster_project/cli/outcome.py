"""What a run of the pipeline came to: its steps, checks, whether it published, and the exit code
of ``cs-warehouse run`` (docs/operations.md#exit-codes)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import dagster as dg

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PARTIAL, EXIT_BUSY = 0, 1, 2, 3, 4
COMPLETE_INPUTS_CHECK = "complete_inputs"
COMPLETE_INPUTS_STEP = f"published__marts_{COMPLETE_INPUTS_CHECK}"


@dataclass
class RunOutcome:
    job: str
    success: bool
    run_id: str
    seconds: float
    failed_steps: list[str] = field(default_factory=list)
    # Steps Dagster skipped because an upstream step did not produce an output it needs: the run
    # did not fail, but what was planned (publish above all) did not happen.
    skipped_steps: list[str] = field(default_factory=list)
    checks_passed: int = 0
    checks_failed: list[str] = field(default_factory=list)
    checks_warned: list[str] = field(default_factory=list)
    published: bool = False
    steps: list[dict] = field(default_factory=list)

    @property
    def partial(self) -> bool:
        """Published, but the inputs check says some landing file was not loaded: the run failed on
        that check alone (a stale partition) or passed with it as a warning (ignored or gone entries)."""
        if not self.published:
            return False
        if self.success:
            return f"published/marts:{COMPLETE_INPUTS_CHECK}" in self.checks_warned
        return bool(self.failed_steps) and all(s.startswith(COMPLETE_INPUTS_STEP) for s in self.failed_steps)


# dagster-dbt's error for a dbt process that exited non-zero: the command, then dbt's own error
# lines after this header (dagster_dbt.core.dbt_cli_invocation).
DBT_PROCESS_ERROR = "The dbt CLI process with command"
DBT_ERRORS_HEADER = "Errors parsed from dbt logs:"
# dbt's first line of a node's error: "<kind> in <resource type> <name> (<file>)", the kind being
# "Failure" (a failing test, or a node that errored) or "<Class> Error" ("Runtime Error", ...).
DBT_NODE_ERROR = re.compile(r"^(?P<kind>Failure|Warning|(?:\w+ )*Error) in (?P<node>(?:\w+ )+\S+ \([^)]*\))$")
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def dbt_failure_summary(description: str) -> str:
    """What failed in a dbt process, from dagster-dbt's error: each node dbt named (the kind of
    failure, the node and its file) and the class of the database's error ("Catalog Error"), never
    the rest of that message, which can quote a value (a conversion error names the text it could
    not convert). Pure."""
    lines = [ANSI_ESCAPE.sub("", line).strip()
             for line in description.partition(DBT_ERRORS_HEADER)[2].splitlines()]
    lines = [line for line in lines if line]
    by_node: dict[str, str] = {}
    for index, line in enumerate(lines):
        match = DBT_NODE_ERROR.match(line)
        if match is None:
            continue
        detail = lines[index + 1] if index + 1 < len(lines) else ""
        error_class, colon, _ = detail.partition(":")
        if colon and len(error_class) <= 40 and not DBT_NODE_ERROR.match(detail) and error_class.endswith("Error"):
            line = f"{line}: {error_class}"
        # dbt says "Failure in model x" and then "Runtime Error in model x": keep the specific one.
        if match["node"] not in by_node or by_node[match["node"]].startswith("Failure in "):
            by_node[match["node"]] = line
    exit_code = re.search(r"failed with exit code `?(\d+)", description)
    code = f" with exit code {exit_code.group(1)}" if exit_code else ""
    if not by_node:
        return f"dbt failed{code} before naming a node: its output is in the run log"
    named = list(by_node.values())
    more = f" (and {len(named) - 1} more nodes: the run log names them)" if len(named) > 1 else ""
    return f"dbt: {named[0]}{more}"


def failure_reason(event) -> str:
    """Why a step failed, in the words of the code that failed it: a ``dg.Failure``'s description,
    else the raised error's message (not Dagster's generic "Execution of step ... failed"), first
    line only; for the dbt step, what dbt named (``dbt_failure_summary``). Messages raised by this
    project never carry landing values (docs/ingest.md)."""
    data = event.event_specific_data
    user = getattr(data, "user_failure_data", None)
    if user is not None and user.description:
        if user.description.startswith(DBT_PROCESS_ERROR):
            return dbt_failure_summary(user.description)
        return user.description.splitlines()[0]
    error = getattr(data, "error", None)
    while error is not None and error.cause is not None and error.cls_name in (
            "DagsterExecutionStepExecutionError", "DagsterUserCodeExecutionError"):
        error = error.cause
    if error is not None and error.message:
        return error.message.strip().splitlines()[0]
    return event.message or "failed"


def step_timings(instance, job_name: str, run_id: str) -> list[dict]:
    """Start/end (unix seconds) of the run's planning and of each step, for the run record that
    the benchmark reads."""
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


def outcome_of(result, instance, job_name: str, seconds: float) -> RunOutcome:
    outcome = RunOutcome(job=job_name, success=result.success, run_id=result.run_id, seconds=seconds)
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            outcome.failed_steps.append(f"{event.step_key}: {failure_reason(event)}")
        elif event.event_type == dg.DagsterEventType.STEP_SKIPPED:
            outcome.skipped_steps.append(event.step_key)
        elif event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            outcome.published |= event.asset_key == dg.AssetKey(["published", "marts"])
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
            if evaluation.passed:
                outcome.checks_passed += 1
                if str(getattr(evaluation, "severity", "")).endswith("WARN") and evaluation.metadata.get("warnings"):
                    outcome.checks_warned.append(name)
            elif str(getattr(evaluation, "severity", "")).endswith("WARN"):
                outcome.checks_warned.append(name)
            else:
                outcome.checks_failed.append(name)
    # Dagster calls a run with skipped steps a success; here it is not one.
    outcome.success = outcome.success and not outcome.skipped_steps
    outcome.steps = step_timings(instance, job_name, result.run_id)
    return outcome


def exit_code(outcome: RunOutcome) -> int:
    if outcome.partial:
        return EXIT_PARTIAL
    return EXIT_OK if outcome.success else EXIT_FAILED
