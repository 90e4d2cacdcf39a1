"""Incremental dbt builds give the same warehouse as a full build.

A warehouse that loads the tiny data set except its last two days, then gets one day at a time —
each time one pipeline run, as `cs-warehouse run` starts it (ingest of the new day's month, an
incremental dbt build, gates, publish) — must end with the same intermediate and mart tables as the
session's full build of everything. A re-sent day (a row gone, a value changed) makes the next
build a full refresh, and the result again equals a fresh full build of the same files.
"""

from __future__ import annotations

import shutil
import sys
from datetime import date, timedelta

import duckdb
import pytest

from dagster_project.settings import REPO_ROOT
from dagster_project.lib.transform.dbt_project import load_run_results, replaced_partitions
from tests.conftest import TINY, new_settings, run_pipeline

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
from benchmarks.floor import compare_marts  # noqa: E402

LAST_DAY = TINY["start"] + timedelta(days=TINY["days"] - 1)
INCREMENTAL_MODELS = ("int_policies__current", "int_claim_events__current", "int_calls__current",
                      "int_surveys__current", "int_claims__milestones", "int_policies__renewals",
                      "int_surveys__attributed")


def _days_landing(full, target, last_day: date):
    """Hard links to every landing file of ``full`` up to ``last_day`` (the monthly workbooks too)."""
    shutil.rmtree(target, ignore_errors=True)
    for path in sorted(full.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(full)
        stem = path.name.split(".")[0]
        if len(stem) == 10 and date.fromisoformat(stem) > last_day:
            continue
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        (target / rel).hardlink_to(path)


def _differences(a, b, schema):
    return [f"{c.table}: {c.problem or ''} only in incremental {c.only_in_pipeline}, only in full {c.only_in_floor}"
            for c in compare_marts(a, b, schema=schema) if not c.equal]


def _build_order(work_db) -> list[str]:
    with duckdb.connect(str(work_db), read_only=True) as con:
        return [r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'intermediate' "
            "and table_type = 'BASE TABLE' order by 1").fetchall()]


def _build_of_last_run(settings) -> dict:
    """The last pipeline run's dbt build: run results and whether it was a full refresh."""
    results = load_run_results(settings)
    return {"statuses": {r["status"] for r in results["results"]},
            "full_refresh": bool(results["args"].get("full_refresh")),
            "seeds": sum(r["unique_id"].startswith("seed.") for r in results["results"])}


@pytest.fixture(scope="module")
def day_by_day(built_settings, tmp_path_factory):
    """A warehouse built full up to two days before the end, then incrementally one day at a time."""
    root = tmp_path_factory.mktemp("incremental")
    settings = new_settings(root, landing=root / "landing")
    builds = []
    for last in (LAST_DAY - timedelta(days=2), LAST_DAY - timedelta(days=1), LAST_DAY):
        _days_landing(built_settings.landing_dir, settings.landing_dir, last)
        assert run_pipeline(settings) == 0
        builds.append(_build_of_last_run(settings))
    return settings, builds


def test_day_by_day_incremental_builds_equal_the_full_build(day_by_day, built_settings):
    settings, builds = day_by_day
    assert all(b["statuses"] <= {"success", "pass"} for b in builds)
    assert [b["full_refresh"] for b in builds] == [False, False, False]
    # the first build loads and verifies the seeds; the day builds leave the unchanged seeds out
    assert builds[0]["seeds"] > 0 and [b["seeds"] for b in builds[1:]] == [0, 0]
    assert set(INCREMENTAL_MODELS) <= set(_build_order(settings.work_db))
    for schema in ("intermediate", "marts"):
        assert not _differences(settings.work_db, built_settings.work_db, schema), schema


def test_incremental_models_recompute_only_the_new_days_keys(day_by_day):
    """The last build ran the incremental branch of every incremental model, and what it swapped
    in (the last day's claims) is a small part of the table."""
    from dagster_project.lib.transform.dbt_project import load_run_results

    settings, _ = day_by_day
    compiled = {r["unique_id"].split(".")[-1]: r.get("compiled_code") or ""
                for r in load_run_results(settings)["results"]}
    for model in INCREMENTAL_MODELS:
        assert "_ingested_at >" in compiled[model], f"{model} was not built incrementally"
    with duckdb.connect(str(settings.work_db), read_only=True) as con:
        newest = con.execute("select max(_ingested_at) from raw.claim_events").fetchone()[0]
        rebuilt, total = con.execute(
            "select count(*) filter (where _source_ingested_at >= ?), count(*) from intermediate.int_claims__milestones",
            [newest]).fetchone()
        new_claims = con.execute(
            "select count(distinct claim_no) from raw.claim_events where _ingested_at >= ?", [newest]).fetchone()[0]
    assert 0 < new_claims <= rebuilt < total / 10


def test_a_re_sent_day_makes_the_next_build_a_full_refresh(day_by_day, tmp_path_factory):
    settings, _ = day_by_day
    resent = LAST_DAY - timedelta(days=20)
    claims = settings.landing_dir / "claims" / f"{resent}.csv"
    lines = claims.read_bytes().splitlines(keepends=True)
    assert len(lines) > 3
    claims.unlink()  # a hard link: write a new file, never the shared original
    claims.write_bytes(b"".join(lines[:-2]))  # the re-sent export lost its last two events
    assert run_pipeline(settings) == 0  # ingest replaces the day; its dbt build is a full refresh
    assert _build_of_last_run(settings)["full_refresh"]
    assert replaced_partitions(settings.work_db) == []  # consumed by that full build

    fresh = new_settings(tmp_path_factory.mktemp("fresh"), landing=settings.landing_dir)
    assert run_pipeline(fresh) == 0
    for schema in ("intermediate", "marts"):
        assert not _differences(settings.work_db, fresh.work_db, schema), schema


def test_a_changed_incremental_model_makes_the_next_build_a_full_refresh(day_by_day):
    """Tables of an incremental model were built by its old definition: after a change to its SQL,
    config or a macro it calls, the next build rebuilds them whole."""
    import json

    from dagster_project.lib.transform.dbt_project import (
        MANIFEST_PATH, dbt_target_dir, full_refresh_reasons, incremental_model_fingerprints,
    )

    settings, _ = day_by_day
    previous = dbt_target_dir(settings) / "manifest.json"
    assert full_refresh_reasons(settings, []) == []  # the last build ran the current definitions
    manifest = json.loads(MANIFEST_PATH.read_text(encoding="utf-8"))
    fingerprints = incremental_model_fingerprints(manifest)
    assert fingerprints["mart_complaints"] == "not incremental"
    assert set(INCREMENTAL_MODELS) <= {n for n, f in fingerprints.items() if f != "not incremental"}
    original = previous.read_text(encoding="utf-8")
    try:
        old = json.loads(original)
        macro = "macro.cs_warehouse.current_versions"
        old["macros"][macro]["macro_sql"] += "\n-- an older version of the macro"
        previous.write_text(json.dumps(old), encoding="utf-8")
        reasons = full_refresh_reasons(settings, [])
        assert len(reasons) == 1 and all(model in reasons[0] for model in INCREMENTAL_MODELS)
    finally:
        previous.write_text(original, encoding="utf-8")
