"""What ``cs-warehouse run`` makes of a Dagster run: a run whose steps were skipped is not a success,
and a failed dbt step says what dbt named, not dagster-dbt's generic first line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from dagster_project.cli.outcome import EXIT_FAILED, EXIT_OK, dbt_failure_summary, exit_code, outcome_of


@dg.asset(output_required=False)
def built():
    """Produces nothing, as a dbt step does when its events are lost."""
    if False:  # pragma: no cover - the output is never produced
        yield dg.Output(1)


@dg.asset
def published(built):
    return built


@dg.asset
def standalone():
    return 1


def test_a_run_with_a_skipped_step_fails_and_names_it():
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([built, published], instance=instance)
    assert result.success  # Dagster's own verdict
    outcome = outcome_of(result, instance, "job", 1.0)
    assert outcome.skipped_steps == ["published"]
    assert not outcome.success and exit_code(outcome) == EXIT_FAILED


def test_a_run_without_skipped_steps_is_ok():
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([standalone], instance=instance)
    outcome = outcome_of(result, instance, "job", 1.0)
    assert outcome.skipped_steps == [] and outcome.success and exit_code(outcome) == EXIT_OK


# --- Why the dbt step failed: what a real dbt process named, and nothing of the data ---

PHONE_LIKE = "13812345678"


def dbt_project(root) -> None:
    (root / "models").mkdir(parents=True)
    (root / "dbt_project.yml").write_text("name: broken\nversion: '1.0'\nprofile: broken\n")
    (root / "profiles.yml").write_text(
        "broken:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        f"      path: {root / 'broken.duckdb'}\n")
    (root / "models" / "fine.sql").write_text("select 1 as id\n")
    (root / "models" / "missing_input.sql").write_text("select * from no_such_table\n")
    # A conversion error quotes the value it could not convert: the summary must not.
    (root / "models" / "bad_cast.sql").write_text(
        "{{ config(materialized='table') }}\n" f"select cast('{PHONE_LIKE}x' as integer) as phone\n")


def test_a_failed_dbt_step_names_the_nodes_and_error_classes_not_the_values(tmp_path):
    project = tmp_path / "dbt"
    dbt_project(project)
    dbt = str(Path(sys.executable).with_name("dbt"))
    subprocess.run([dbt, "parse", "--project-dir", str(project), "--profiles-dir", str(project)],
                   check=True, capture_output=True)

    @dbt_assets(manifest=project / "target" / "manifest.json")
    def broken_build(context, dbt: DbtCliResource):
        yield from dbt.cli(["build"], context=context).stream()

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [broken_build], instance=instance, raise_on_error=False,
        resources={"dbt": DbtCliResource(project_dir=str(project), profiles_dir=str(project), dbt_executable=dbt)})
    outcome = outcome_of(result, instance, "job", 1.0)
    assert not outcome.success and exit_code(outcome) == EXIT_FAILED
    [reason] = outcome.failed_steps
    assert reason.startswith("broken_build: dbt: Runtime Error in model "), reason
    assert reason.endswith("(and 1 more nodes: the run log names them)"), reason
    assert ": Conversion Error" in reason or ": Catalog Error" in reason, reason
    # The database's message of the other node quotes the value; dbt passed it on, the summary not.
    description = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE
                       ).event_specific_data.user_failure_data.description
    assert PHONE_LIKE in description
    assert "The dbt CLI process" not in reason and PHONE_LIKE not in reason


def test_dbt_failure_summary_of_a_failure_before_any_node():
    description = ("The dbt CLI process with command\n\n`dbt build`\n\nfailed with exit code `2`. "
                   "Check the stdout in the Dagster compute logs for the full information.")
    assert dbt_failure_summary(description) == "dbt failed with exit code 2 before naming a node: its output is in the run log"
    failing_test = (description + "\n\nErrors parsed from dbt logs:\n\n\x1b[31mFailure in test "
                    "not_null_mart_x_id (models/mart_x.yml)\x1b[0m\n\n  Got 3 results, configured to fail if != 0\n")
    assert dbt_failure_summary(failing_test) == "dbt: Failure in test not_null_mart_x_id (models/mart_x.yml)"
