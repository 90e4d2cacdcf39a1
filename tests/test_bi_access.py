"""The BI user's view of the published file: every published mart is readable through
SQLAlchemy + duckdb-engine, read-only, from a separate process, with a comment on every table and
column; and every SQL example in docs/bi.md runs against a freshly published file, so the doc
cannot rot.

The published file comes from the session's tiny warehouse (``built_settings``, published by its
pipeline run), copied, then one run of the monthly_snapshot job, which republishes through the mart
gates with the optional ``kpi_snapshots`` history included.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap

import duckdb
import pytest

from dagster_project.settings import REPO_ROOT
from dagster_project.lib.publish.publish import MART_SCHEMA, allow_list
from tests.conftest import new_settings

PUBLISHED_MARTS = allow_list()  # the dbt catalog's published marts and the snapshot history

BI_DOC = REPO_ROOT / "docs" / "bi.md"
SNAPSHOT_PERIOD = "2025-03"  # inside the tiny data set (TINY: 2024-01-01 + 550 days)


# ---------------------------------------------------------------------------------------------
# pure helpers
# ---------------------------------------------------------------------------------------------

def sql_blocks(markdown: str) -> list[tuple[int, str]]:
    """``[(line_number, sql)]`` for every fenced ```sql block of a markdown text."""
    blocks = []
    for match in re.finditer(r"^```sql[ \t]*\n(.*?)^```[ \t]*$", markdown, flags=re.M | re.S):
        line = markdown.count("\n", 0, match.start()) + 1
        blocks.append((line, match.group(1).strip()))
    return blocks


def mart_tables_named(sql: str) -> set[str]:
    """The ``marts.<table>`` names a query reads."""
    return {m.lower() for m in re.findall(rf"\b{MART_SCHEMA}\.(\w+)", sql, flags=re.I)}


def test_sql_blocks_are_extracted_with_their_line():
    text = "intro\n```sql\nSELECT 1;\n```\n```python\nx = 1\n```\n```sql\nSELECT *\nFROM marts.a\n```\n"
    assert sql_blocks(text) == [(2, "SELECT 1;"), (8, "SELECT *\nFROM marts.a")]
    assert mart_tables_named("select * from marts.a join MARTS.b_c on x") == {"a", "b_c"}


# ---------------------------------------------------------------------------------------------
# fixture: a published file from the tiny data set
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def published(built_settings, tmp_path_factory):
    """A copy of the session warehouse (published by its pipeline run), then the monthly snapshot
    job, which writes the ``kpi_snapshots`` history and republishes through the mart gates
    (catalog comments, Great Expectations suites, audit, atomic swap): the file checked here is a
    real publish."""
    from dagster_project.cli.commands import run_snapshot_job

    settings = new_settings(tmp_path_factory.mktemp("bi"), landing=built_settings.landing_dir)
    shutil.copytree(built_settings.warehouse_dir, settings.warehouse_dir, dirs_exist_ok=True)
    assert run_snapshot_job(settings, SNAPSHOT_PERIOD) == 0
    return settings


# ---------------------------------------------------------------------------------------------
# (b) SQLAlchemy + duckdb-engine in a separate process: every table and column commented
# ---------------------------------------------------------------------------------------------

READER_SCRIPT = textwrap.dedent("""
    import json, sys
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    path = sys.argv[1]
    engine = sa.create_engine("duckdb:///" + path, connect_args={"read_only": True}, poolclass=NullPool)
    inspector = sa.inspect(engine)
    out = {"tables": {}}
    with engine.connect() as conn:
        for table in inspector.get_table_names(schema="marts"):
            columns = inspector.get_columns(table, schema="marts")
            rows = conn.execute(sa.text(f'SELECT * FROM marts."{table}" LIMIT 5')).fetchall()
            out["tables"][table] = {
                "inspector_comment": (inspector.get_table_comment(table, schema="marts") or {}).get("text"),
                "inspector_columns": {c["name"]: c.get("comment") for c in columns},
                "count": conn.execute(sa.text(f'SELECT count(*) FROM marts."{table}"')).scalar(),
                "sample_rows": len(rows),
            }
        for table, comment in conn.execute(sa.text(
                "SELECT table_name, comment FROM duckdb_tables() "
                "WHERE database_name = current_database() AND schema_name = 'marts'")):
            out["tables"][table]["catalog_comment"] = comment
        for table, column, comment in conn.execute(sa.text(
                "SELECT table_name, column_name, comment FROM duckdb_columns() "
                "WHERE database_name = current_database() AND schema_name = 'marts'")):
            out["tables"][table].setdefault("catalog_columns", {})[column] = comment
        counts = conn.execute(sa.text("SELECT row_counts FROM meta.publish_manifest")).scalar()
        # duckdb-engine hands JSON columns over already parsed
        out["manifest_counts"] = counts if isinstance(counts, dict) else json.loads(counts)
        try:
            conn.execute(sa.text("CREATE TABLE marts.bi_probe AS SELECT 1 AS x"))
            out["write_error"] = None
        except Exception as exc:  # the point: a read-only engine refuses writes
            out["write_error"] = str(exc).splitlines()[0]
    print(json.dumps(out, ensure_ascii=False))
""")


@pytest.fixture(scope="module")
def sqlalchemy_view(published):
    proc = subprocess.run([sys.executable, "-c", READER_SCRIPT, str(published.published_db)],
                          capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert proc.returncode == 0, f"SQLAlchemy reader failed:\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout)


def test_every_published_mart_is_readable_through_sqlalchemy(sqlalchemy_view):
    tables = sqlalchemy_view["tables"]
    assert set(tables) == set(PUBLISHED_MARTS)  # kpi_snapshots included: the snapshot published it
    for table, info in tables.items():
        assert info["count"] == sqlalchemy_view["manifest_counts"][table], table
        assert info["count"] > 0, f"marts.{table} is empty in the published tiny data set"
        assert info["sample_rows"] == min(5, info["count"])


def test_every_table_and_column_has_a_comment(sqlalchemy_view):
    missing = []
    for table, info in sqlalchemy_view["tables"].items():
        for source in ("inspector_comment", "catalog_comment"):
            if not (info.get(source) or "").strip():
                missing.append(f"marts.{table} (table, {source})")
        # the inspector and the DuckDB catalogue must agree on the column list and the texts
        assert info["inspector_columns"] == info["catalog_columns"], table
        for column, comment in info["catalog_columns"].items():
            if not (comment or "").strip():
                missing.append(f"marts.{table}.{column}")
    assert not missing, "no comment on: " + ", ".join(missing)


def test_contract_columns_are_described_in_both_languages_of_the_business(sqlalchemy_view):
    # Spot check that the comments are the dbt descriptions, not placeholders.
    columns = sqlalchemy_view["tables"]["mart_complaints"]["catalog_columns"]
    assert "有效投诉率" in columns["valid_rate"] and "valid / received" in columns["valid_rate"]
    assert "满意度" in sqlalchemy_view["tables"]["mart_stage_satisfaction"]["catalog_columns"]["csat"]


def test_the_read_only_engine_refuses_writes(sqlalchemy_view):
    assert "read-only" in (sqlalchemy_view["write_error"] or "")


# ---------------------------------------------------------------------------------------------
# (c) every SQL block of docs/bi.md runs against the published file
# ---------------------------------------------------------------------------------------------

def test_the_doc_has_a_query_for_every_published_mart():
    covered = set()
    for _, sql in sql_blocks(BI_DOC.read_text(encoding="utf-8")):
        covered |= mart_tables_named(sql)
    assert set(PUBLISHED_MARTS) - covered == set(), "docs/bi.md has no query reading these marts"
    assert covered <= set(PUBLISHED_MARTS), f"docs/bi.md queries unknown marts: {covered - set(PUBLISHED_MARTS)}"


def test_every_sql_block_of_the_doc_runs(published):
    blocks = sql_blocks(BI_DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= len(PUBLISHED_MARTS) + 3
    failures, empty = [], []
    con = duckdb.connect(str(published.published_db), read_only=True)
    try:
        for line, sql in blocks:
            try:
                rows = con.execute(sql).fetchall()
            except duckdb.Error as exc:
                failures.append(f"docs/bi.md line {line}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
                continue
            if not rows:
                empty.append(f"docs/bi.md line {line}")
    finally:
        con.close()
    assert not failures, "\n".join(failures)
    # A useful example shows something on real data.
    assert not empty, "queries returned no rows: " + ", ".join(empty)


def test_doc_manifest_query_reports_this_version(published):
    from dagster_project.lib.publish.versions import current_manifest

    manifest_sql = next(sql for _, sql in sql_blocks(BI_DOC.read_text(encoding="utf-8"))
                        if "FROM meta.publish_manifest;" in sql)
    with duckdb.connect(str(published.published_db), read_only=True) as con:
        row = dict(zip([d[0] for d in con.execute(manifest_sql).description], con.fetchone()))
    manifest = current_manifest(published)
    assert row["version_id"] == manifest["version_id"]
    assert row["storage_version"] == "v1.0.0"
    checks = manifest["check_summary"]["checks"]
    assert row["checks"] == len(checks) > 0
    assert row["checks_passed"] == sum(1 for c in checks if c["passed"])
