"""From a plan (``lib/planning.py``) to a run of the pipeline job: the same translation for the
CLI, the landing sensor and the daily schedule, so the three launch identical runs for identical
landing files (``tests/test_front_door.py`` checks it)."""

from __future__ import annotations

from dataclasses import dataclass, field

import dagster as dg

from dagster_project.defs.conventions import PIPELINE_JOB, PLAN_TAG, RANGE_END_TAG, RANGE_START_TAG
from dagster_project.defs.ingest.assets import ingest_asset_key
from dagster_project.lib.ingest.sources import CONTRACTS
from dagster_project.lib.planning import (
    LandingFile, RunPlan, current_files, current_ignored, describe_beyond, loaded_files, plan_run,
)
from dagster_project.settings import Settings

INGEST_KEYS = frozenset(ingest_asset_key(s) for s in CONTRACTS)


@dataclass(frozen=True)
class Launch:
    """What to run: the pipeline job's assets for a plan, with its tags."""

    plan: RunPlan
    asset_selection: tuple[dg.AssetKey, ...]
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def job_name(self) -> str:
        return PIPELINE_JOB

    def run_request(self, run_key: str | None = None) -> dg.RunRequest:
        return dg.RunRequest(run_key=run_key or self.plan.run_key, job_name=self.job_name,
                             asset_selection=list(self.asset_selection), tags=dict(self.tags))


def launch_for(plan: RunPlan, pipeline_keys: frozenset[dg.AssetKey] | set[dg.AssetKey]) -> Launch:
    """The pipeline's assets for ``plan``: the ingest assets of its sources over its months, and
    everything downstream of ingest (dbt, publish); without sources, the downstream part only."""
    downstream = {k for k in pipeline_keys if k not in INGEST_KEYS}
    selected = {ingest_asset_key(s) for s in plan.sources} | downstream
    tags = {PLAN_TAG: plan.run_key}
    if plan.ingests:
        tags.update({RANGE_START_TAG: plan.start, RANGE_END_TAG: plan.end})
    return Launch(plan, tuple(sorted(selected, key=lambda k: k.to_user_string())), tags)


def plan_pipeline(settings: Settings, partitions_def: dg.PartitionsDefinition, *,
                  rebuild_when_unchanged: bool) -> tuple[RunPlan | None, list[LandingFile], str | None]:
    """(plan, the landing files, a note on files beyond the known months) for these settings."""
    files = current_files(settings)
    known = list(partitions_def.get_partition_keys())
    plan = plan_run(files, loaded_files(settings), known_periods=known,
                    rebuild_when_unchanged=rebuild_when_unchanged, ignored=current_ignored(settings))
    return plan, files, describe_beyond(plan, files, known)
