"""The default data set of ``make run`` (params.DEFAULT_*), generated and built once per session
through the production path, like the tiny session fixtures: one `cs-warehouse run` (ingest, dbt,
the gates, publish) recorded in the fixture's own Dagster instance. It is the expensive fixture of
the suite (about two minutes on two cores); only tests that need the default scale use it."""

from __future__ import annotations

from datetime import date

import pytest

from tests.conftest import new_settings, run_pipeline


@pytest.fixture(scope="session")
def default_scale_settings(tmp_path_factory):
    from dagster_project.tools.sample_data import params as P
    from dagster_project.tools.sample_data.generator import generate

    settings = new_settings(tmp_path_factory.mktemp("default_scale"))
    generate(settings.landing_dir, scale=P.DEFAULT_SCALE, start=date.fromisoformat(P.DEFAULT_START),
             days=P.DEFAULT_DAYS, seed=P.DEFAULT_SEED, progress=False)
    assert run_pipeline(settings) == 0
    yield settings
