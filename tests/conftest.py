"""Shared fixtures: one tiny generated data set per test session, run once through the pipeline job.

The session warehouse is built the way `cs-warehouse run` builds one (``dagster_project.cli.run``):
the definitions for the session's settings, one run of ``warehouse_pipeline`` planned from the
landing files — ingest, dbt (a subprocess), the quality gates, publish — recorded in the session's
Dagster instance. Tests that change files or the warehouse must work on a copy (``copy_settings``),
never on the session fixtures themselves.
"""

from __future__ import annotations

import os
import shutil
from datetime import date
from pathlib import Path

import pytest

from dagster_project.settings import Settings

# Small enough for a fast suite, large enough that the planted effects are statistically visible.
TINY = {"scale": 0.2, "start": date(2024, 1, 1), "days": 550, "seed": 7, "complaints_per_10k": 100}
TEST_SALT = "test-salt-not-secret"


def require_tools(missing: list[str]) -> None:
    """Skip a test whose optional tools are missing, naming them; in CI (CI=true) fail instead:
    .ci/run installs every optional tool, so a missing one there is a broken install."""
    if not missing:
        return
    message = "missing: " + "; ".join(missing)
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


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


def new_settings(root: Path, landing: Path | None = None) -> Settings:
    """Settings of a new, empty warehouse under ``root`` (its folders created)."""
    settings = make_settings(root, landing=landing)
    for path in (settings.warehouse_dir, settings.reports_dir, settings.outbox_dir):
        path.mkdir(parents=True, exist_ok=True)
    return settings


def run_pipeline(settings: Settings) -> int:
    """One `cs-warehouse run` on these settings, in this process (its exit code)."""
    from dagster_project.cli.run import run_pipeline as cli_run

    return cli_run(settings)


@pytest.fixture(scope="session")
def tiny_settings(tiny_landing, tmp_path_factory) -> Settings:
    return new_settings(tmp_path_factory.mktemp("tiny_wh"), landing=tiny_landing)


@pytest.fixture(scope="session")
def built_settings(tiny_settings) -> Settings:
    """The tiny landing data through one pipeline run: raw.*, every dbt model, seed and test, the
    gates passed and the marts published, as `cs-warehouse run` does it."""
    assert run_pipeline(tiny_settings) == 0
    return tiny_settings


@pytest.fixture(scope="session")
def ingested_settings(built_settings) -> Settings:
    """The session warehouse, for tests that read raw.* (loaded by the same pipeline run)."""
    return built_settings


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
        return new

    return _copy
