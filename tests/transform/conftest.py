"""The default data set of ``make run`` (params.DEFAULT_*), generated and built through the
production path, like the tiny session fixtures: one `cs-warehouse run` (ingest, dbt, the gates,
publish) recorded in the fixture's own Dagster instance. It is the expensive fixture of the suite
(about two minutes on two cores), so it is built once per test session even when the tests run
on several workers (``make test``): the first worker that needs it builds it under a lock in the
session's shared temporary folder, the others wait for it and read the same files. Tests that use
it open the warehouse read-only; a test that must change it works on a copy."""

from __future__ import annotations

import fcntl
import json
import shutil
from datetime import date

import duckdb
import pytest

from tests.conftest import new_settings, run_pipeline


@pytest.fixture(scope="session")
def default_scale_settings(request, tmp_path_factory):
    from dagster_project.tools.sample_data import params as P
    from dagster_project.tools.sample_data.generator import generate

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if hasattr(request.config, "workerinput") else base  # xdist worker: pytest-N/
    root = shared / "default_scale"
    with open(shared / "default_scale.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = root / ".built"
        if not done.exists():
            shutil.rmtree(root, ignore_errors=True)  # a worker that failed to build it left a part
            settings = new_settings(root)
            generate(settings.landing_dir, scale=P.DEFAULT_SCALE, start=date.fromisoformat(P.DEFAULT_START),
                     days=P.DEFAULT_DAYS, seed=P.DEFAULT_SEED, progress=False)
            assert run_pipeline(settings) == 0
            done.touch()
    yield new_settings(root)


@pytest.fixture(scope="module")
def default_scale_con(default_scale_settings):
    """The default-scale work file, read-only."""
    c = duckdb.connect(str(default_scale_settings.work_db), read_only=True)
    yield c
    c.close()


@pytest.fixture(scope="module")
def default_scale_truth(default_scale_settings) -> dict:
    """What the generator planted in the default data set (its ``_truth.json``)."""
    return json.loads((default_scale_settings.landing_dir / "_truth.json").read_text(encoding="utf-8"))
