"""Write–audit–publish on a hand-built work file: bad batches never change the published file,
good ones swap it atomically, rollback restores, and old/new readers (DuckDB 1.x, SQLAlchemy) work."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from dagster_project.settings import REPO_ROOT
from dagster_project.lib.publish.publish import (
    KEEP_VERSIONS, PublishError, allow_list, failed_blocking_checks, list_versions, publish, sha256_of,
)
from dagster_project.lib.publish.versions import current_manifest, print_publish_status, rollback
from dagster_project.lib.quality.validate import validate_suite
from dagster_project.lib.transform.catalog import HISTORY_TABLES
from tests.conftest import make_settings
from tests.publish.fake_warehouse import DEFECTS, apply_sql, build_work_db, gate_and_publish, write_manifest


@pytest.fixture()
def settings(tmp_path):
    s = make_settings(tmp_path)
    build_work_db(s.work_db)
    return s


PASSED_SUMMARY = {"checks": [{"name": "gx_marts_mart_complaints", "passed": True, "severity": "ERROR"}]}


def _publish(settings, run_id):
    """Publish without re-running the gate (the gate itself is tested with the defects)."""
    return publish(settings, run_id, PASSED_SUMMARY, [])


def _failed_checks(result) -> list[str]:
    import dagster as dg

    return [e.event_specific_data.check_name for e in result.all_events
            if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION and not e.event_specific_data.passed]


@pytest.fixture()
def published(settings):
    return settings, _publish(settings, "run-good-1")


def _count(path, table="mart_complaints"):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(f"select count(*) from marts.{table}").fetchone()[0]
    finally:
        con.close()


def test_gate_passes_a_good_batch_and_records_every_suite(settings):
    result = gate_and_publish(settings)
    assert result.success
    manifest = current_manifest(settings)
    assert len(manifest["check_summary"]["checks"]) == 17 and manifest["run_id"] == result.run_id
    assert manifest["row_counts"]["mart_complaints"] == 1
    assert (settings.reports_dir / "validation" / "latest.html").exists()


def test_good_batch_publishes_with_manifest_and_mode_0644(published):
    settings, result = published
    assert settings.published_db.exists()
    assert oct(settings.published_db.stat().st_mode & 0o777) == "0o644"
    manifest = current_manifest(settings)
    assert manifest["version_id"] == result.version_id
    assert manifest["run_id"] == "run-good-1"
    assert manifest["row_counts"]["mart_call_center_daily"] == 2
    assert manifest["row_counts"]["dim_customer_segment"] == 5
    assert manifest["check_summary"] == PASSED_SUMMARY
    con = duckdb.connect(str(settings.published_db), read_only=True)
    tables = {r[0] for r in con.execute(
        "select table_name from information_schema.tables where table_schema='marts'").fetchall()}
    con.close()
    assert tables == set(allow_list(write_manifest(settings))) - set(HISTORY_TABLES)  # written by later steps
    # The work file's raw/staging never leave it.
    assert len(list_versions(settings)) == 1


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_each_defect_fails_the_gate_and_leaves_the_published_file_unchanged(published, defect):
    settings, _ = published
    before = sha256_of(settings.published_db)
    sql, suite = DEFECTS[defect]
    apply_sql(settings.work_db, sql)
    assert not validate_suite(settings.work_db, suite).success
    result = gate_and_publish(settings)
    assert not result.success
    assert f"gx_{suite}" in _failed_checks(result)  # the check names the suite, and so its table
    assert sha256_of(settings.published_db) == before
    assert len(list_versions(settings)) == 1  # no candidate left behind


@pytest.mark.parametrize("defect", ["phone_number_leaks_into_a_mart", "complainant_name_leaks_into_a_mart"])
def test_audit_catches_pii_even_if_the_gate_was_skipped(published, defect):
    settings, _ = published
    before = sha256_of(settings.published_db)
    apply_sql(settings.work_db, DEFECTS[defect][0])
    with pytest.raises(PublishError, match=r"PII scan: marts\.(mart_underwriting_watchlist\.reason|fct_complaint_winback\.branch_code)"):
        publish(settings, "run-no-gate", {"checks": []}, [])
    assert sha256_of(settings.published_db) == before


def test_audit_refuses_a_column_without_a_type(published):
    """A column built from NULL literals alone has DuckDB's type NULL, which BI drivers cannot map
    (duckdb-engine warns and guesses): the audit names it and the published file stays."""
    settings, _ = published
    before = sha256_of(settings.published_db)
    apply_sql(settings.work_db, "create or replace table marts.fct_followup_case as "
                                "select * replace (null as claim_no) from marts.fct_followup_case")
    with pytest.raises(PublishError, match=r"contract: marts\.fct_followup_case\.claim_no has no type"):
        publish(settings, "run-untyped", {"checks": []}, [])
    assert sha256_of(settings.published_db) == before


def test_failed_blocking_check_in_the_summary_refuses_publish(published):
    settings, _ = published
    summary = {"checks": [{"name": "gx_raw_policies", "passed": False, "severity": "ERROR"},
                          {"name": "gx_raw_surveys", "passed": False, "severity": "WARN"}]}
    assert failed_blocking_checks(summary) == ["gx_raw_policies"]
    with pytest.raises(PublishError, match="gx_raw_policies"):
        publish(settings, "run-x", summary, [])


READER = textwrap.dedent("""
    import sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True)
    print(con.execute("select version_id from meta.publish_manifest").fetchone()[0])
    print(con.execute("select count(*) from marts.mart_stage_satisfaction").fetchone()[0])
""")


def test_fresh_process_sees_new_version_while_an_old_reader_keeps_the_old(published):
    settings, first = published
    old_reader = duckdb.connect(str(settings.published_db), read_only=True)
    assert old_reader.execute("select count(*) from marts.mart_stage_satisfaction").fetchone()[0] == 2
    apply_sql(settings.work_db, "insert into marts.mart_stage_satisfaction select * replace ('HB' as branch_code) "
                                "from marts.mart_stage_satisfaction where branch_code = 'JL'")
    result = gate_and_publish(settings)
    assert result.success
    [event] = result.get_asset_materialization_events()  # (not read back here: this process holds the old file)
    second_version = event.materialization.metadata["version_id"].value
    out = subprocess.run([sys.executable, "-c", READER, str(settings.published_db)],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == [second_version, "3"]
    # The reader that opened the file before the swap still reads the old version, without error.
    assert old_reader.execute("select version_id from meta.publish_manifest").fetchone()[0] == first.version_id
    assert second_version != first.version_id
    assert old_reader.execute("select count(*) from marts.mart_stage_satisfaction").fetchone()[0] == 2
    old_reader.close()


def test_rollback_restores_the_previous_version_and_versions_are_capped(published, capsys):
    settings, first = published
    versions = [first.version_id]
    for i in range(KEEP_VERSIONS + 1):
        apply_sql(settings.work_db, f"update marts.mart_complaints set per_10k_policies = {i + 2}")
        versions.append(_publish(settings, f"run-{i}").version_id)
    assert len(list_versions(settings)) == KEEP_VERSIONS
    assert rollback(settings) == 0
    assert current_manifest(settings)["version_id"] == versions[-2]
    assert rollback(settings) == 0
    assert current_manifest(settings)["version_id"] == versions[-3]
    assert print_publish_status(settings) == 0
    out = capsys.readouterr().out
    assert versions[-3] in out and "(current)" in out


def test_rollback_to_a_named_version_asks_first(published, capsys):
    settings, first = published
    versions = [first.version_id]
    for i in range(2):
        apply_sql(settings.work_db, f"update marts.mart_complaints set per_10k_policies = {i + 2}")
        versions.append(_publish(settings, f"run-{i}").version_id)
    questions = []
    # "no": nothing changes, and the question names both versions
    assert rollback(settings, to=versions[0], confirm=lambda q: questions.append(q) or False) == 1
    assert current_manifest(settings)["version_id"] == versions[2]
    assert versions[2] in questions[0] and versions[0] in questions[0] and "[y/N]" in questions[0]
    assert "rollback cancelled" in capsys.readouterr().out
    # "yes" to the oldest kept version, named by a unique leading part of its id: two versions back
    assert rollback(settings, to=versions[0][:-3], confirm=lambda q: True) == 0
    assert current_manifest(settings)["version_id"] == versions[0]
    assert rollback(settings, to=versions[0], confirm=lambda q: True) == 1  # already published
    assert rollback(settings, to="20000101T000000", confirm=lambda q: True) == 2  # not kept
    err = capsys.readouterr().err
    assert "already the published version" in err and "no kept version '20000101T000000'" in err
    assert versions[1] in err  # the message lists what is kept


def test_cli_rollback_confirms_on_the_terminal_or_with_yes(published):
    """The command as an operator types it: the answer comes on standard input; no answer is a no."""
    settings, first = published
    apply_sql(settings.work_db, "update marts.mart_complaints set per_10k_policies = 9")
    second = _publish(settings, "run-2").version_id

    def cli(*args, answer=None):
        return subprocess.run([sys.executable, "-m", "dagster_project", "rollback", *args],
                              input=answer, stdin=None if answer is not None else subprocess.DEVNULL,
                              capture_output=True, text=True, env=settings.child_env(), cwd=REPO_ROOT)

    no_answer = cli("--to", first.version_id)
    assert no_answer.returncode == 1 and "rollback cancelled" in no_answer.stdout
    assert cli("--to", first.version_id, answer="n\n").returncode == 1
    assert current_manifest(settings)["version_id"] == second
    yes = cli("--to", first.version_id, answer="y\n")
    assert yes.returncode == 0 and f"rolled back: {second} -> {first.version_id}" in yes.stdout
    assert current_manifest(settings)["version_id"] == first.version_id
    scripted = cli("--to", second, "--yes")
    assert scripted.returncode == 0 and "[y/N]" not in scripted.stdout
    assert current_manifest(settings)["version_id"] == second


def test_rollback_without_previous_version_fails_cleanly(published):
    settings, _ = published
    before = sha256_of(settings.published_db)
    assert rollback(settings) == 1
    assert sha256_of(settings.published_db) == before


def test_published_file_opens_read_only_through_sqlalchemy(published):
    import sqlalchemy as sa

    settings, _ = published
    engine = sa.create_engine(f"duckdb:///{settings.published_db}", connect_args={"read_only": True})
    try:
        with engine.connect() as con:
            n = con.execute(sa.text("select count(*) from marts.dim_customer_segment")).scalar()
            assert n == 5
            columns = {c["name"] for c in sa.inspect(con).get_columns("mart_complaints", schema="marts")}
            assert {"received", "valid_rate"} <= columns
            with pytest.raises(Exception, match="read-only"):
                con.execute(sa.text("create table marts.x(i int)"))
    finally:
        engine.dispose()


DUCKDB1_DIR = REPO_ROOT / ".cache" / "duckdb1"


def _duckdb1_path() -> Path:
    if not (DUCKDB1_DIR / "duckdb").exists():
        proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--target", str(DUCKDB1_DIR),
                               "duckdb>=1.1,<2"], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"could not install a DuckDB 1.x reader: {proc.stderr.strip()[-300:]}")
    return DUCKDB1_DIR


def _read_with_duckdb1(path: Path) -> subprocess.CompletedProcess:
    code = ("import sys, duckdb; assert duckdb.__version__.startswith('1.'), duckdb.__version__; "
            "con = duckdb.connect(sys.argv[1], read_only=True); "
            "print(duckdb.__version__, con.execute('select count(*) from marts.mart_claim_cycle').fetchone()[0], "
            "con.execute(\"select comment from duckdb_tables() where table_name='publish_manifest'\").fetchone()[0] is not None)")
    # -S: no site-packages, so only the DuckDB 1.x in the cached target dir is importable.
    return subprocess.run([sys.executable, "-S", "-c", code, str(path)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(_duckdb1_path())})


def test_duckdb_1x_reader_opens_the_published_file(published, tmp_path):
    settings, _ = published
    proc = _read_with_duckdb1(settings.published_db)
    assert proc.returncode == 0, proc.stderr
    version, rows, has_comment = proc.stdout.split()
    assert version.startswith("1.") and rows == "2" and has_comment == "True"
    # Control: a file written with DuckDB 2.0's default storage is not readable by 1.x, so the
    # test above really depends on the explicit STORAGE_VERSION.
    default_file = tmp_path / "default.duckdb"
    con = duckdb.connect(str(default_file))
    con.execute("create schema marts; create table marts.mart_claim_cycle as select 1 as i")
    con.close()
    storage = duckdb.connect(str(default_file), read_only=True).execute(
        "select tags['storage_version'] from duckdb_databases() where database_name = 'default'").fetchone()[0]
    if storage and storage.startswith("v1."):
        pytest.skip(f"DuckDB {duckdb.__version__} writes {storage} by default; no control possible")
    assert _read_with_duckdb1(default_file).returncode != 0


def test_comments_and_the_allow_list_come_from_the_dbt_catalog(settings):
    write_manifest(settings, {"mart_complaints": ("Complaints per branch × month (投诉)",
                                                  {"valid_rate": "valid ÷ received (有效投诉率)"})})
    assert gate_and_publish(settings).success
    con = duckdb.connect(str(settings.published_db), read_only=True)
    table_comment = con.execute("select comment from duckdb_tables() where table_name = 'mart_complaints'").fetchone()[0]
    column_comment = con.execute("select comment from duckdb_columns() where table_name = 'mart_complaints' "
                                 "and column_name = 'valid_rate'").fetchone()[0]
    con.close()
    assert table_comment == "Complaints per branch × month (投诉)"
    assert column_comment == "valid ÷ received (有效投诉率)"
