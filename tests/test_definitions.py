"""The Dagster definitions load (what `dagster dev` loads) and every asset is documented for the UI."""

from __future__ import annotations

import dagster as dg
import pytest


@pytest.fixture(scope="module")
def defs():
    from dagster_project.definitions import defs

    dg.Definitions.validate_loadable(defs)
    return defs


def _specs(defs):
    graph = defs.resolve_asset_graph()
    return {key: graph.get(key) for key in graph.get_all_asset_keys() if graph.get(key).is_materializable}


def test_every_asset_has_description_group_kinds_and_owner(defs):
    problems = []
    for key, node in _specs(defs).items():
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
    groups = {node.group_name for node in _specs(defs).values()}
    for expected in ("staging", "intermediate", "marts", "publish", "reporting"):
        assert expected in groups
    assert any(g.startswith("ingest") for g in groups)


def test_published_marts_have_freshness_policies(defs):
    specs = _specs(defs)
    marts = [k for k in specs if k.path[0] == "marts"]
    assert len(marts) >= 10
    missing = [k.to_user_string() for k in marts + [dg.AssetKey(["published", "marts"])]
               if specs[k].freshness_policy is None]
    assert not missing, f"no freshness policy: {missing}"


def test_dbt_sources_hang_under_ingest_assets(defs):
    graph = defs.resolve_asset_graph()
    for source in ("policies", "claim_events", "call_logs", "surveys", "complaints", "audits"):
        key = dg.AssetKey(["raw", source])
        assert graph.get(key).is_materializable, f"{source} should be the ingest asset itself"
        assert graph.get(key).child_keys, f"nothing downstream of raw/{source}"


def test_jobs_and_sensor_exist(defs):
    for name in ("daily_pipeline", "ingest_audits", "monthly_snapshot"):
        assert defs.get_job_def(name) is not None
    assert defs.get_sensor_def("landing_sensor") is not None
