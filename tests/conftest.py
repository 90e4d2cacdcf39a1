"""Shared fixtures: one tiny generated data set per test session, ingested and built once.

Tests that change files or the warehouse must work on a copy (``copy_settings``), never on the
session fixtures themselves.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from dagster_project.settings import Settings

# Small enough for a fast suite, large enough that the planted effects are statistically visible.
TINY = {"scale": 0.2, "start": date(2024, 1, 1), "days": 550, "seed": 7, "complaints_per_10k": 100}
TEST_SALT = "test-salt-not-secret"


def make_settings(root: Path, landing: Path | None = None) -> Settings:
    return Settings(
        landing_dir=landing or root / "landing",
        warehouse_dir=root / "warehouse",
        reports_dir=root / "reports",
        outbox_dir=root / "outbox",
        dagster_home=root / "dagster_home",
        pii_salt=TEST_SALT,
    )


@pytest.fixture(scope="session")
def tiny_landing(tmp_path_factory) -> Path:
    from dagster_project.tools.sample_data.generator import generate

    out = tmp_path_factory.mktemp("tiny") / "landing"
    generate(out, progress=False, **TINY)
    return out


@pytest.fixture(scope="session")
def tiny_settings(tiny_landing, tmp_path_factory) -> Settings:
    settings = make_settings(tmp_path_factory.mktemp("tiny_wh"), landing=tiny_landing)
    for path in (settings.warehouse_dir, settings.reports_dir, settings.outbox_dir):
        path.mkdir(parents=True, exist_ok=True)
    settings.apply_to_environ()
    return settings


@pytest.fixture(scope="session")
def ingested_settings(tiny_settings) -> Settings:
    """The tiny landing data loaded into raw.* of the session's work file."""
    from dagster_project.lib.ingest.loader import ingest_all_files

    ingest_all_files(tiny_settings, run_id="test-session")
    return tiny_settings


@pytest.fixture(scope="session")
def built_settings(ingested_settings) -> Settings:
    """raw.* plus every dbt model and seed built in the session's work file."""
    from dagster_project.lib.transform.dbt_project import run_dbt_build

    run_dbt_build(ingested_settings)
    return ingested_settings


@pytest.fixture()
def copy_settings(tmp_path):
    """Copy a session Settings' landing folder and warehouse into tmp_path, for tests that mutate."""

    def _copy(settings: Settings, *, with_landing: bool = True) -> Settings:
        new = make_settings(tmp_path, landing=None if with_landing else settings.landing_dir)
        if with_landing:
            shutil.copytree(settings.landing_dir, new.landing_dir)
        if settings.warehouse_dir.exists():
            shutil.copytree(settings.warehouse_dir, new.warehouse_dir)
        for path in (new.warehouse_dir, new.reports_dir, new.outbox_dir):
            path.mkdir(parents=True, exist_ok=True)
        new.apply_to_environ()
        return new

    return _copy
