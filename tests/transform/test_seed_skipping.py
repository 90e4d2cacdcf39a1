"""An incremental build leaves out the seeds (and the tests on seeds alone) only when every seed is
exactly as a completed build verified it (lib/transform/dbt_project.py, "unchanged seeds")."""

from __future__ import annotations

import copy

import duckdb

from dagster_project.lib.transform.catalog import load_manifest
from dagster_project.lib.transform.dbt_project import (
    VERIFIED_SEEDS_TABLE, excluding, prepare_manifest, seed_fingerprints, seed_tests, unchanged_seed_exclusions,
)


def _manifest():
    node = lambda kind, name, parents=(), **extra: {  # noqa: E731
        "resource_type": kind, "name": name, "depends_on": {"nodes": list(parents)}, **extra}
    return {"macros": {}, "nodes": {
        "seed.p.branches": node("seed", "branches", checksum={"checksum": "a"}, schema="reference"),
        "seed.p.stages": node("seed", "stages", checksum={"checksum": "b"}, schema="reference"),
        "model.p.mart": node("model", "mart", ["seed.p.branches"]),
        "test.p.unique_branches_code": node("test", "unique_branches_code", ["seed.p.branches"], raw_code="x"),
        "test.p.rel_stages_branches": node("test", "rel_stages_branches", ["seed.p.stages", "seed.p.branches"]),
        "test.p.rel_mart_branches": node("test", "rel_mart_branches", ["model.p.mart", "seed.p.branches"]),
    }}


def test_the_tests_of_a_seed_are_those_on_seeds_alone():
    assert seed_tests(_manifest()) == {
        "seed.p.branches": ["test.p.rel_stages_branches", "test.p.unique_branches_code"],
        "seed.p.stages": ["test.p.rel_stages_branches"],
    }  # the model's relationship to a seed is the model's test: it runs in every build


def test_a_changed_file_or_test_changes_the_fingerprint_of_that_seed_only():
    base = seed_fingerprints(_manifest())
    changed_file = _manifest()
    changed_file["nodes"]["seed.p.branches"]["checksum"] = {"checksum": "c"}
    changed_test = _manifest()
    changed_test["nodes"]["test.p.unique_branches_code"]["raw_code"] = "y"
    for manifest in (changed_file, changed_test):
        now = seed_fingerprints(manifest)
        assert now["seed.p.branches"] != base["seed.p.branches"] and now["seed.p.stages"] == base["seed.p.stages"]


def test_leaving_out_turns_indirect_selection_off_and_nothing_changes_without_names():
    assert excluding(["build"], []) == ["build"]
    assert excluding(["build"], ["branches", "stages"]) == [
        "build", "--indirect-selection", "empty", "--exclude", "branches stages"]


def test_the_session_build_verified_its_seeds_and_any_difference_keeps_them_in(built_settings, copy_settings):
    settings = copy_settings(built_settings, with_landing=False)
    manifest = load_manifest(prepare_manifest())
    names = unchanged_seed_exclusions(settings, manifest)
    seeds = {n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "seed"}
    assert seeds <= set(names) and len(names) > len(seeds)
    assert not any(manifest["nodes"][uid]["resource_type"] == "model"
                   for uid in manifest["nodes"] if manifest["nodes"][uid]["name"] in names)

    # a seed file that differs from the verified one: every seed is built and tested again
    edited = copy.deepcopy(manifest)
    uid = next(u for u, n in edited["nodes"].items() if n["resource_type"] == "seed")
    edited["nodes"][uid]["checksum"] = {"name": "sha256", "checksum": "0" * 64}
    assert unchanged_seed_exclusions(settings, edited) == []

    # a seed table that lost a row since it was verified (a load cut short): the same
    node = manifest["nodes"][uid]
    with duckdb.connect(str(settings.work_db)) as con:
        assert con.execute(f"select count(*) from {VERIFIED_SEEDS_TABLE}").fetchone()[0] == len(seeds)
        con.execute(f'delete from "{node["schema"]}"."{node.get("alias") or node["name"]}" where rowid = '
                    f'(select min(rowid) from "{node["schema"]}"."{node.get("alias") or node["name"]}")')
    assert unchanged_seed_exclusions(settings, manifest) == []
