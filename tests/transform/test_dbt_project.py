"""The dbt project: manifest, contracts, unit tests, failure reporting, docs, Dagster wiring."""

from __future__ import annotations

import json

import dagster as dg
import duckdb
import pytest

from dagster_project.cli.outcome import failure_reason
from dagster_project.settings import REPO_ROOT

from dagster_project.lib.transform.dbt_project import DbtBuildError, generate_docs, prepare_manifest, run_dbt

H3_MARTS = (
    "mart_stage_satisfaction", "mart_claim_cycle", "mart_complaints", "fct_complaint_winback",
    "mart_winback", "mart_call_center_daily", "mart_call_center_monthly", "mart_mystery_shopping",
)
# Key columns BI users rely on (a contract for BI users).
ISSUE_COLUMNS = {
    "mart_stage_satisfaction": ["branch_code", "stage", "month", "responses", "satisfied", "csat", "mean_score",
                                "wilson_low", "wilson_high", "csat_shrunk", "company_csat", "gap_vs_company",
                                "low_sample", "significantly_below"],
    "mart_claim_cycle": ["branch_code", "month", "claims_reported", "claims_closed", "closure_rate",
                         "arrival_minutes_p50", "arrival_minutes_p90", "report_to_assessment_hours_p50",
                         "report_to_payment_days_p50", "report_to_payment_days_p90",
                         "agreement_to_payment_days_p50", "paid_within_10d_share", "decided_within_30d_share",
                         "acceptance_rate", "reopen_rate"],
    "mart_complaints": ["branch_code", "month", "received", "accepted", "valid", "valid_rate", "per_10k_policies",
                        "per_100m_premium", "handling_days_p50", "handling_days_p90", "within_deadline_share",
                        "open_backlog", "overdue", "regulator_routed"],
    "fct_complaint_winback": ["complaint_no", "post_handling_score", "satisfied_after", "due_for_renewal",
                              "renewed", "baseline_renewal_rate"],
    "mart_winback": ["branch_code", "month", "post_handling_score", "satisfied_after", "due_for_renewal", "renewed",
                     "winback_rate", "baseline_renewal_rate", "renewal_lift"],
    "mart_call_center_daily": ["day", "queue", "offered", "answered", "abandoned", "manual_answer_rate",
                               "service_level_20s", "abandon_rate", "asa_seconds", "aht_seconds", "inbound_share",
                               "followup_reach_rate", "followups_per_closed_claim"],
    "mart_call_center_monthly": ["branch_code", "month", "offered", "answered", "abandoned", "manual_answer_rate",
                                 "service_level_20s", "abandon_rate", "asa_seconds", "aht_seconds", "inbound_share",
                                 "followup_reach_rate", "followups_per_closed_claim"],
    "mart_mystery_shopping": ["branch_code", "quarter", "audits", "pass_rate", "arrival_minutes_avg",
                              "arrival_within_sla_share", "assessment_score_avg", "payment_convenience_avg"],
}
SPEC_MODELS = {
    "stg_policies__policies": ["policy_no", "customer_key", "branch_code", "line_of_business", "business_source",
                               "sum_insured", "premium", "vehicle_price", "issue_date", "start_date", "end_date",
                               "renewal_of", "status", "is_cancelled"],
    "stg_claim_events__events": ["event_id", "claim_no", "policy_no", "event_type", "event_ts", "event_date",
                                 "amount", "surveyor_id", "payment_method", "is_injury", "location_type",
                                 "report_channel"],
    "int_claims__milestones": ["claim_no", "policy_no", "customer_key", "branch_code", "line_of_business",
                               "business_source", "reported_ts", "report_date", "report_month", "dispatched_ts",
                               "arrived_ts", "docs_complete_ts", "assessed_ts", "agreed_ts", "paid_ts",
                               "rejected_ts", "cancelled_ts", "closed_ts", "reopened_ts", "is_injury",
                               "location_type", "estimate_amount", "assessed_amount", "paid_amount",
                               "incurred_amount", "is_cancelled", "is_rejected", "is_paid", "is_closed",
                               "is_reopened", "is_zero_closed", "arrival_minutes", "report_to_assessment_hours",
                               "report_to_payment_days", "agreement_to_payment_days"],
    "int_policies__renewals": ["policy_no", "customer_key", "branch_code", "line_of_business", "business_source",
                               "end_date", "is_due_for_renewal", "renewed", "renewal_policy_no"],
    "int_warehouse__as_of": ["as_of_date", "window_start_date"],
}
PII_COLUMNS = {"customer_id", "customer_name", "id_card_no", "phone", "complainant_name", "complainant_phone"}


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads(prepare_manifest().read_text(encoding="utf-8"))


def _model(manifest: dict, name: str) -> dict:
    for node in manifest["nodes"].values():
        if node["resource_type"] == "model" and node["name"] == name:
            return node
    raise AssertionError(f"model {name} not in the manifest")


def test_marts_have_enforced_contracts_and_described_typed_columns(manifest):
    for name in H3_MARTS:
        node = _model(manifest, name)
        assert node["schema"] == "marts" and node["config"]["materialized"] == "table", name
        assert node["config"]["contract"]["enforced"] is True, name
        assert node["description"].strip(), name
        for column, spec in node["columns"].items():
            assert spec.get("data_type"), f"{name}.{column} has no data_type"
            assert spec.get("description", "").strip(), f"{name}.{column} has no description"
        missing = set(ISSUE_COLUMNS[name]) - set(node["columns"])
        assert not missing, f"{name} lacks issue-4 columns {missing}"


def test_every_kpi_mart_has_a_unit_test(manifest):
    tested = {node["model"] for node in manifest.get("unit_tests", {}).values()}
    untested = [m for m in H3_MARTS if m not in tested]
    assert not untested, f"marts without dbt unit tests: {untested}"
    for formula_model in ("int_claims__milestones", "int_complaints__lifecycle", "stg_surveys__responses"):
        assert formula_model in tested


def test_built_models_have_the_spec_columns_and_no_pii(built_settings):
    con = duckdb.connect(str(built_settings.work_db), read_only=True)
    try:
        rows = con.sql("""
            select table_schema, table_name, column_name from information_schema.columns
            where table_schema in ('staging', 'intermediate', 'marts')
            order by table_schema, table_name, ordinal_position
        """).fetchall()
    finally:
        con.close()
    columns: dict[str, list[str]] = {}
    for _schema, table, column in rows:
        columns.setdefault(table, []).append(column)
    for name, expected in {**SPEC_MODELS, **ISSUE_COLUMNS}.items():
        assert name in columns, f"{name} was not built"
        missing = [c for c in expected if c not in columns[name]]
        assert not missing, f"{name} lacks {missing}"
    leaked = {(t, c) for t, cols in columns.items() for c in cols if c in PII_COLUMNS}
    assert not leaked, f"PII columns past staging: {leaked}"


def test_dbt_unit_tests_pass(built_settings, tmp_path):
    # its own target folder: the session build's compiled SQL is what other tests run
    result = run_dbt(built_settings, ["test", "--select", "test_type:unit"], target_dir=tmp_path / "dbt_target")
    assert result["statuses"].get("pass", 0) >= 11
    assert set(result["statuses"]) == {"pass"}


def test_scrubbed_comments_hold_no_phone_or_id_numbers(built_settings):
    con = duckdb.connect(str(built_settings.work_db), read_only=True)
    try:
        leaks = con.sql(r"""
            select count(*) from staging.stg_surveys__responses
            where regexp_matches(comment, '1[3-9][0-9]{9}') or regexp_matches(comment, '[0-9]{17}[0-9Xx]')
        """).fetchall()[0][0]
        raw_with_phone = con.sql(r"""
            select count(*) from raw.surveys where regexp_matches(comment, '1[3-9][0-9]{9}')
        """).fetchall()[0][0]
    finally:
        con.close()
    assert raw_with_phone > 0, "the generator planted no phone numbers in comments: the test would prove nothing"
    assert leaks == 0


def test_a_failing_test_names_the_node_and_blocks(built_settings, copy_settings):
    settings = copy_settings(built_settings, with_landing=False)
    con = duckdb.connect(str(settings.work_db))
    try:
        # an audit of a branch that is not in the branches seed: the relationships test must fail
        con.execute("update raw.audits set branch_code = 'ZZ' where audit_id = (select min(audit_id) from raw.audits)")
    finally:
        con.close()
    with pytest.raises(DbtBuildError) as failure:
        run_dbt(settings, ["build", "--select", "stg_audits__audits+"])
    assert any("relationships_stg_audits__audits_branch_code" in node for node in failure.value.failed_nodes)
    assert str(settings.work_db) in str(failure.value)


def test_a_failing_dbt_test_in_the_pipeline_fails_its_check_and_blocks_publish(built_settings, copy_settings):
    """Through the production path: the run's dbt step reports the failed test as a failed check
    and publish does not run, so the published file stays byte for byte what it was."""
    import hashlib

    from tests.conftest import run_pipeline

    settings = copy_settings(built_settings, with_landing=False)
    before = hashlib.sha256(settings.published_db.read_bytes()).hexdigest()
    con = duckdb.connect(str(settings.work_db))
    try:
        con.execute("update raw.audits set branch_code = 'ZZ' where audit_id = (select min(audit_id) from raw.audits)")
    finally:
        con.close()
    assert run_pipeline(settings) == 1
    instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
    [run] = instance.get_runs(limit=1)
    evaluations = [r.event_log_entry.dagster_event.event_specific_data for r in instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records]
    failed = {e.check_name for e in evaluations if not e.passed}
    assert any("relationships_stg_audits__audits_branch_code" in name for name in failed), failed
    # The run's summary says which test failed, not dagster-dbt's "The dbt CLI process with command".
    [dbt_failure] = [r.event_log_entry.dagster_event for r in instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE).records]
    assert failure_reason(dbt_failure).startswith(
        "dbt: Failure in test relationships_stg_audits__audits_branch_code"), failure_reason(dbt_failure)
    published = [r for r in instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
                 if r.event_log_entry.dagster_event.asset_key == dg.AssetKey(["published", "marts"])]
    assert published == []
    assert hashlib.sha256(settings.published_db.read_bytes()).hexdigest() == before


def test_docs_generate_offline(built_settings, copy_settings):
    settings = copy_settings(built_settings, with_landing=False)
    index = generate_docs(settings)
    html = index.read_text(encoding="utf-8")
    assert index.parent == settings.reports_dir / "dbt-docs"
    assert (index.parent / "catalog.json").exists() and (index.parent / "manifest.json").exists()
    # the static page inlines the manifest and loads no script or stylesheet from the network
    assert "mart_stage_satisfaction" in html
    assert '<script src="http' not in html and '<link href="http' not in html
    # dbt docs only starts its usage tracker when the manifest allows it
    assert '"send_anonymous_usage_stats": false' in html


def test_dagster_dbt_assets_hang_under_the_ingest_assets():
    from dagster_project.defs.transform.assets import CsDbtTranslator, cs_dbt_assets, layer_of

    keys = {key.path[0] + "/" + key.path[1] for key in cs_dbt_assets.keys}
    for name in H3_MARTS:
        assert f"marts/{name}" in keys
    assert "staging/stg_policies__policies" in keys and "reference/branches" in keys
    upstream = {dep for deps in cs_dbt_assets.asset_deps.values() for dep in deps} - set(cs_dbt_assets.keys)
    assert upstream == {dg.AssetKey(["raw", s]) for s in
                        ("policies", "claim_events", "call_logs", "surveys", "complaints", "audits")}
    groups = {cs_dbt_assets.specs_by_key[k].group_name for k in cs_dbt_assets.keys}
    # semantic: the time spine of the semantic layer (docs/bi.md#the-semantic-layer)
    assert groups == {"staging", "intermediate", "marts", "reference", "semantic"}
    spec = cs_dbt_assets.specs_by_key[dg.AssetKey(["marts", "mart_complaints"])]
    assert {"dbt", "duckdb"} <= set(spec.kinds)
    assert "有效投诉率" in str(spec.metadata["dagster/column_schema"])
    checks = list(cs_dbt_assets.check_specs)
    assert checks and all(c.blocking for c in checks if "not_null" in c.name)
    assert layer_of({"resource_type": "source", "name": "x"}) == "raw"
    assert layer_of({"resource_type": "model", "fqn": ["cs_warehouse", "marts", "customers", "dim"]}) == "marts"
    assert CsDbtTranslator().get_asset_key({"resource_type": "source", "name": "surveys"}) == dg.AssetKey(["raw", "surveys"])


def test_dbt_resource_skips_the_version_subprocess_and_the_idle_adapter():
    """The resource overrides two private members of dagster-dbt's DbtCliResource: they must still
    exist (an upgrade that renames them would bring the costs back silently), the version must be
    what the executable reports, and the executable is the launcher that dies with its parent."""
    import subprocess
    from functools import cached_property

    import dbt.version
    from dagster_dbt import DbtCliResource
    from packaging import version

    from dagster_project.defs.transform.resource import dbt_resource
    from dagster_project.lib.transform.dbt_project import DBT_LAUNCHER
    from tests.conftest import make_settings

    DBT_RESOURCE = dbt_resource(make_settings(REPO_ROOT / "unused"))

    assert isinstance(DbtCliResource.__dict__["_cli_version"], cached_property)
    assert callable(DbtCliResource.__dict__["_initialize_dbt_core_adapter"])
    assert DBT_RESOURCE.dbt_executable == str(DBT_LAUNCHER)
    assert DBT_RESOURCE._cli_version == version.parse(dbt.version.__version__)
    reported = subprocess.run([DBT_RESOURCE.dbt_executable, "--version"], capture_output=True, text=True,
                              timeout=120).stdout
    assert f"installed: {dbt.version.__version__}" in reported
    assert DBT_RESOURCE._initialize_dbt_core_adapter(["build"]) is None  # no column lineage: no adapter


def test_the_marts_refuse_rows_that_break_their_contract(built_settings, copy_settings):
    """A mart's row rules (a rate in [0, 1], a key not null) are its contract's constraints: the
    tables dbt built carry them, so DuckDB refuses such a row whenever a model writes one and the
    model fails, which blocks publish (as the failing dbt test above)."""
    settings = copy_settings(built_settings, with_landing=False)
    with duckdb.connect(str(settings.work_db)) as con:
        with pytest.raises(duckdb.ConstraintException, match="closure_rate"):
            con.execute("insert into marts.mart_claim_cycle select * replace (1.6 as closure_rate) "
                        "from marts.mart_claim_cycle limit 1")
        with pytest.raises(duckdb.ConstraintException, match="branch_code"):
            con.execute("insert into marts.mart_mystery_shopping select * replace (null as branch_code) "
                        "from marts.mart_mystery_shopping limit 1")


def test_the_first_build_of_a_warehouse_reuses_the_project_parse(built_settings):
    """The session warehouse's first build started from the project's parse under its own profile
    hash: dbt computed the same hash, and no command on it re-parsed for a changed profile."""
    import msgpack

    from dagster_project.lib.transform.dbt_project import PARTIAL_PARSE_FILE, _profile_connection, dbt_target_dir

    target = dbt_target_dir(built_settings)
    with open(target / PARTIAL_PARSE_FILE, "rb") as fh:
        state = msgpack.unpack(fh, raw=False, strict_map_key=False)
    assert state["state_check"]["profile_hash"]["checksum"] == _profile_connection(built_settings)[0]
    log = (target / "dbt.log").read_text(encoding="utf-8", errors="replace")
    assert "Found " in log, "no dbt command logged here"
    assert "profile has changed" not in log
