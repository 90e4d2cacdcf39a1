"""The default data set of ``make run`` (params.DEFAULT_*), generated, ingested and built once per
session through the same code path as the tiny session fixtures (generate -> ingest_all_files ->
run_dbt_build). It is the expensive fixture of the suite (about two minutes on two cores); only
tests that need the default scale use it."""

from __future__ import annotations

import os
from datetime import date

import pytest


@pytest.fixture(scope="session")
def default_scale_settings(tmp_path_factory):
    from dagster_project.lib.ingest.loader import ingest_all_files
    from dagster_project.lib.transform.dbt_project import run_dbt_build
    from dagster_project.tools.sample_data import params as P
    from dagster_project.settings import Settings
    from dagster_project.tools.sample_data.generator import generate

    root = tmp_path_factory.mktemp("default_scale")
    # laid out like tests/conftest.py's make_settings (same test salt)
    settings = Settings(landing_dir=root / "landing", warehouse_dir=root / "warehouse",
                        reports_dir=root / "reports", outbox_dir=root / "outbox",
                        dagster_home=root / "dagster_home", pii_salt="test-salt-not-secret")
    for path in (settings.warehouse_dir, settings.reports_dir, settings.outbox_dir):
        path.mkdir(parents=True, exist_ok=True)
    generate(settings.landing_dir, scale=P.DEFAULT_SCALE, start=date.fromisoformat(P.DEFAULT_START),
             days=P.DEFAULT_DAYS, seed=P.DEFAULT_SEED, progress=False)
    before = dict(os.environ)
    settings.apply_to_environ()
    try:
        ingest_all_files(settings, run_id="default-scale")
        run_dbt_build(settings)
    finally:
        # the tiny session fixtures' environment stays what it was for the tests that follow
        os.environ.clear()
        os.environ.update(before)
    yield settings
