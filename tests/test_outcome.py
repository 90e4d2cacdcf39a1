"""What ``cs-warehouse run`` makes of a Dagster run: a run whose steps were skipped is not a success."""

from __future__ import annotations

import dagster as dg

from dagster_project.cli.outcome import EXIT_FAILED, EXIT_OK, exit_code, outcome_of


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
