"""The Dagster definitions: they load (what `dagster dev` loads), every asset is documented for the
UI, and their shape — asset keys, groups, deps, partitioning, checks, jobs, schedules, sensors — is
a reviewed snapshot (``tests/snapshots/definitions.json``), so a change shows in review.

Refresh the snapshot after an intended change with ``CSWH_UPDATE_SNAPSHOTS=1 pytest tests/test_definitions.py``
and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg
import pytest

from tests.conftest import make_settings

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"


@pytest.fixture(scope="module")
def defs(tiny_landing, tmp_path_factory):
    from dagster_project.definitions import build_definitions

    definitions = build_definitions(make_settings(tmp_path_factory.mktemp("defs"), landing=tiny_landing))
    dg.Definitions.validate_loadable(definitions)
    return definitions


def _nodes(defs):
    graph = defs.resolve_asset_graph()
    return {key: graph.get(key) for key in graph.get_all_asset_keys() if graph.get(key).is_materializable}


def shape(defs) -> dict:
    """What a reviewer should see change: a plain, sorted document of the definitions."""
    graph = defs.resolve_asset_graph()
    assets = {}
    for key, node in sorted(_nodes(defs).items()):
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "kinds": sorted(node.kinds),
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "partitioned": type(node.partitions_def).__name__ if node.partitions_def else None,
            "freshness": node.freshness_policy is not None,
            "pool": node.pools and sorted(node.pools),
        }
    dbt_owned = set(defs.resolve_assets_def(dg.AssetKey(["marts", "mart_complaints"])).check_keys)
    checks = sorted(({"asset": k.asset_key.to_user_string(), "name": k.name, "blocking": graph.get(k).blocking}
                     for k in graph.asset_check_keys if k not in dbt_owned),
                    key=lambda c: (c["asset"], c["name"]))
    dbt_tests = {"checks": len(dbt_owned), "blocking": sum(graph.get(k).blocking for k in dbt_owned)}
    jobs = {}
    for job in sorted(defs.resolve_all_job_defs(), key=lambda j: j.name):
        if job.name.startswith("__"):
            continue
        jobs[job.name] = {
            "assets": sorted(k.to_user_string() for k in job.asset_layer.selected_asset_keys),
            "steps": sorted(node.name for node in job.graph.nodes),
            "partitioned": type(job.partitions_def).__name__ if job.partitions_def else None,
        }
    schedules = {s.name: {"cron": s.cron_schedule, "timezone": s.execution_timezone, "job": s.job_name,
                          "default": s.default_status.value}
                 for s in sorted(defs.schedules or [], key=lambda s: s.name)}
    sensors = {s.name: {"job": s.job_name, "default": s.default_status.value}
               for s in sorted(defs.sensors or [], key=lambda s: s.name)}
    return {"assets": assets, "checks": checks, "dbt_test_checks": dbt_tests, "jobs": jobs,
            "schedules": schedules, "sensors": sensors, "resources": sorted(defs.resources)}


def test_the_definitions_match_the_reviewed_snapshot(defs):
    current = shape(defs)
    if os.environ.get("CSWH_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(current, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    stored = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    assert current == stored, "the definitions changed: review, then refresh tests/snapshots/definitions.json"


def test_every_asset_has_description_group_kinds_and_owner(defs):
    problems = []
    for key, node in _nodes(defs).items():
        if not (node.description or "").strip():
            problems.append(f"{key.to_user_string()}: no description")
        if not node.group_name or node.group_name == "default":
            problems.append(f"{key.to_user_string()}: no group")
        if not node.kinds:
            problems.append(f"{key.to_user_string()}: no kinds")
        if not node.owners:
            problems.append(f"{key.to_user_string()}: no owner")
    assert not problems, "\n".join(problems)


def test_groups_follow_the_layers(defs):
    groups = {node.group_name for node in _nodes(defs).values()}
    for expected in ("staging", "intermediate", "marts", "publish", "reporting"):
        assert expected in groups
    assert any(g.startswith("ingest") for g in groups)


def test_one_freshness_policy_on_what_bi_reads(defs):
    from dagster_project.defs.conventions import FRESHNESS

    nodes = _nodes(defs)
    marts = [k for k in nodes if k.path[0] == "marts" and k.path[1] != "kpi_snapshots"]
    assert len(marts) >= 10
    assert {nodes[k].freshness_policy for k in marts + [dg.AssetKey(["published", "marts"])]} == {FRESHNESS}
    assert all(nodes[k].freshness_policy is None for k in nodes if k.path[0] in ("raw", "staging", "intermediate"))


def test_dbt_sources_hang_under_ingest_assets(defs):
    graph = defs.resolve_asset_graph()
    for source in ("policies", "claim_events", "call_logs", "surveys", "complaints", "audits"):
        key = dg.AssetKey(["raw", source])
        assert graph.get(key).is_materializable, f"{source} should be the ingest asset itself"
        assert graph.get(key).child_keys, f"nothing downstream of raw/{source}"


def test_one_partitions_definition_for_every_ingest_asset_and_the_snapshot(defs):
    nodes = _nodes(defs)
    partitioned = {k: n.partitions_def for k, n in nodes.items() if n.partitions_def is not None}
    assert {k.path[0] for k in partitioned} == {"raw", "marts", "reporting"}
    assert len(set(partitioned.values())) == 1
    months = next(iter(partitioned.values())).get_partition_keys()
    # The tiny data set: 2024-01-01 + 550 days, so the partitions end with its month, 2025-07.
    assert (months[0], months[-1], len(months)) == ("2024-01-01", "2025-07-01", 19)


def test_the_publish_step_waits_for_every_blocking_mart_check(defs):
    """Blocking checks only gate within a run: the mart gates and publish are in the same jobs."""
    for name in ("warehouse_pipeline", "monthly_snapshot"):
        job = defs.resolve_job_def(name)
        plan = job.get_subset(asset_selection={dg.AssetKey(["published", "marts"])}, asset_check_selection=None)
        assert plan is not None
        deps = job.graph.dependencies
        publish = next(n for n in deps if n.name == "published__marts")
        upstream = {d.node for dep in deps[publish].values() for d in dep.get_node_dependencies()}
        assert "gx_marts" in upstream, (name, upstream)
