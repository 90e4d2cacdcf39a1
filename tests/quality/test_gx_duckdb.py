"""The GX/DuckDB compatibility layer: validation works inside DuckDB with the patch, fails
without it, and the layer refuses to install when the GX internals it relies on are gone."""

from __future__ import annotations

import json

import duckdb
import great_expectations as gx
import pytest

from dagster_project.settings import EXPECTATIONS_DIR
from dagster_project.lib.quality import gx_duckdb
from dagster_project.lib.quality.validate import (
    check_suite_dict, duplicate_keys_query, list_suites, load_suite_dict, pii_scan_query, validate_suites,
)


@pytest.fixture()
def known_table(tmp_path):
    """1,000 policy numbers of which exactly 7 are malformed, and 3 text values with a phone."""
    path = tmp_path / "known.duckdb"
    con = duckdb.connect(str(path))
    con.execute("""create schema raw;
        create table raw.known as
        select i as id,
               case when i % 143 = 5 then 'X' || i::varchar else 'PJL' || lpad(i::varchar, 10, '0') end as policy_no,
               case when i in (1, 2, 3) then '请回电 1391234567' || i::varchar else 'ok' end as note
        from range(1000) r(i)""")
    expected_bad = con.execute("select count(*) from raw.known where policy_no not like 'PJL%'").fetchone()[0]
    con.close()
    assert expected_bad == 7
    return path


def _validate(path, expectations):
    with gx_duckdb.duckdb_datasource(path) as (_, ds):
        batch = ds.add_table_asset(name="known", table_name="known", schema_name="raw") \
            .add_batch_definition_whole_table("all").get_batch()
        return [batch.validate(e) for e in expectations]


def test_sql_mode_validation_gives_the_known_unexpected_counts(known_table):
    gx_duckdb.install()
    regex, not_null, phones = _validate(known_table, [
        gx.expectations.ExpectColumnValuesToMatchRegex(column="policy_no", regex=r"^P[A-Z]{2}[0-9]{10}$"),
        gx.expectations.ExpectColumnValuesToNotBeNull(column="id"),
        gx.expectations.ExpectColumnValuesToNotMatchRegex(column="note", regex=r"1[3-9][0-9]{9}"),
    ])
    assert regex.result["unexpected_count"] == 7
    assert regex.result["element_count"] == 1000
    assert not_null.success and not_null.result["unexpected_count"] == 0
    assert phones.result["unexpected_count"] == 3
    # The file is free again afterwards: the pipeline can open it read-write in this process.
    duckdb.connect(str(known_table)).close()


def test_without_the_patch_gx_cannot_validate_duckdb(known_table):
    """If this starts passing without the patch, GX fixed DuckDB support and the layer can go;
    if the patched test above fails, GX changed underneath the layer."""
    gx_duckdb.uninstall()
    try:
        with _unpatched(known_table) as results:
            pass
    finally:
        gx_duckdb.install()
    (regex,) = results
    assert not regex.success
    assert regex.result.get("unexpected_count") != 7


class _unpatched:
    """Validate one regex expectation with GX's own engine (no install())."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        context = gx.get_context(mode="ephemeral")
        ds = context.data_sources.add_sql(name="plain", connection_string=gx_duckdb.duckdb_url(self.path),
                                          kwargs={"connect_args": {"read_only": True}})
        batch = ds.add_table_asset(name="known", table_name="known", schema_name="raw") \
            .add_batch_definition_whole_table("all").get_batch()
        result = batch.validate(gx.expectations.ExpectColumnValuesToMatchRegex(
            column="policy_no", regex=r"^P[A-Z]{2}[0-9]{10}$"))
        gx_duckdb.close_execution_engine(ds.get_execution_engine())
        return [result]

    def __exit__(self, *exc):
        return False


def test_install_refuses_when_gx_internals_change(monkeypatch):
    from great_expectations.execution_engine import sqlalchemy_execution_engine as module

    monkeypatch.delattr(module, "_PERSISTED_CONNECTION_DIALECTS")
    with pytest.raises(gx_duckdb.GXCompatibilityError, match="_PERSISTED_CONNECTION_DIALECTS"):
        gx_duckdb._verify_internals(module, module.SqlAlchemyExecutionEngine)


def test_patch_is_installed_on_the_class_gx_uses():
    gx_duckdb.install()
    from great_expectations.execution_engine import SqlAlchemyExecutionEngine

    assert gx_duckdb.is_installed()
    assert SqlAlchemyExecutionEngine.get_connection.__qualname__.startswith("install.")


def test_every_suite_is_well_formed_and_raw_suites_have_at_least_eight():
    names = list_suites(None, EXPECTATIONS_DIR)
    raw = [n for n in names if n.startswith("raw_")]
    assert sorted(raw) == ["raw_audits", "raw_call_logs", "raw_claim_events", "raw_complaints",
                           "raw_policies", "raw_surveys"]
    assert len([n for n in names if n.startswith("marts_")]) == 17
    for name in names:
        data = load_suite_dict(name)
        suite = gx.ExpectationSuite(name=name, expectations=data["expectations"])
        assert len(suite.expectations) == len(data["expectations"])
        if name.startswith("raw_"):
            assert len(data["expectations"]) >= 8, name


def test_a_suite_without_severity_is_rejected():
    bad = {"meta": {"table": "raw.x", "layer": "raw", "asset_key": ["raw", "x"]},
           "expectations": [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"},
                             "meta": {"why": "key"}}]}
    with pytest.raises(ValueError, match="expectation #0.*severity"):
        check_suite_dict(bad, "bad.json")


def test_pii_scan_query_finds_phones_ids_and_names_but_not_hashes_or_business_ids():
    con = duckdb.connect()
    con.execute("create schema raw; create table raw.complaints(complainant_name varchar);"
                "insert into raw.complaints values ('王小明')")
    con.execute("""create table t(v varchar); insert into t values
        ('call 13912345678'), ('22010119800101123X'), ('王小明'), (?), ('E123456789012'), ('CA139123456789'), ('fine')""",
                [__import__("hashlib").sha256(b"13812345678").hexdigest()])
    query = pii_scan_query("v", names_table="raw.complaints").format(batch="t")
    found = sorted(r[0] for r in con.execute(query).fetchall())
    assert found == sorted(["call 13912345678", "22010119800101123X", "王小明"])


def test_a_check_started_during_the_background_import_waits_for_it(tmp_path):
    """The pipeline imports GX in a thread while ingest runs; a check step that starts while the
    import is half done (the audits run's gate starts ~1 s in) must get a complete GX, not
    ``ImportError: cannot import name ... partially initialized module``. A fresh interpreter,
    because this one has GX imported already."""
    import subprocess
    import sys
    from pathlib import Path

    table_db = tmp_path / "t.duckdb"
    with duckdb.connect(str(table_db)) as con:
        con.execute("create table t as select range as x from range(5)")
    script = (
        "import time\n"
        "from dagster_project.lib.quality import gx_duckdb\n"
        "gx_duckdb.warm_up_in_background()\n"
        "time.sleep(0.3)\n"
        f"with gx_duckdb.duckdb_datasource({str(table_db)!r}) as (context, datasource):\n"
        "    import great_expectations as gx\n"
        "    asset = datasource.add_table_asset(name='t', table_name='t')\n"
        "    batch = asset.add_batch_definition_whole_table('all').get_batch()\n"
        "    result = batch.validate(gx.expectations.ExpectColumnValuesToBeBetween(column='x', min_value=0, max_value=3))\n"
        "    print('unexpected', result.result['unexpected_count'])\n"
    )
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", script], cwd=repo, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "unexpected 1"


def test_uniqueness_expectations_find_the_planted_duplicate_keys(tmp_path):
    """The suites' uniqueness expectations run as duplicate-key queries (GX's own SQL joins every
    column of the table); the outcome keeps the suite's expectation type and counts the keys held
    by more than one row, ignoring all-null keys as GX does."""
    db = tmp_path / "dups.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("""create schema raw; create table raw.t as
            select * from (values ('a.csv', 'P1'), ('a.csv', 'P1'), ('a.csv', 'P1'), ('b.csv', 'P1'),
                                  ('a.csv', 'P2'), ('b.csv', 'P2'), ('b.csv', 'P2'),
                                  (null, null), (null, null), ('c.csv', null)) v(_source_file, policy_no)""")
        found = con.execute(duplicate_keys_query(["_source_file", "policy_no"]).format(batch="raw.t")).fetchall()
    assert sorted(found) == [("a.csv", "P1", 3), ("b.csv", "P2", 2)]
    suites = tmp_path / "expectations"
    suites.mkdir()
    (suites / "raw_t.json").write_text(json.dumps({
        "name": "raw_t", "meta": {"table": "raw.t", "layer": "raw", "asset_key": ["raw", "t"]},
        "expectations": [
            {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["_source_file", "policy_no"]},
             "meta": {"severity": "critical", "why": "one row per key and file"}},
            {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "_source_file"},
             "meta": {"severity": "warning", "why": "planted: files repeat"}},
            {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "policy_no"},
             "meta": {"severity": "critical", "why": "planted: P1 and P2 repeat"}},
        ]}))
    [result] = validate_suites(db, ["raw_t"], expectations_dir=suites)
    compound, files, policies = result.outcomes
    assert (compound.expectation_type, compound.success, compound.unexpected_count) == \
        ("expect_compound_columns_to_be_unique", False, 2)
    assert compound.column == "_source_file,policy_no" and compound.severity == "critical"
    assert (files.success, files.unexpected_count, files.severity) == (False, 2, "warning")
    assert (policies.success, policies.unexpected_count) == (False, 2)
    assert not result.success
