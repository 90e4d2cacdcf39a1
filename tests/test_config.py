"""Settings: defaults under data/, relative values from the repository root, salt from the env."""

from __future__ import annotations

import os
import subprocess
import sys

from dagster_project.settings import REPO_ROOT, Settings


def test_defaults_live_under_data():
    settings = Settings.from_env({"CSWH_PII_SALT": "test-salt-16-chars"})
    assert settings.landing_dir == REPO_ROOT / "data" / "landing"
    assert settings.work_db == REPO_ROOT / "data" / "warehouse" / "work.duckdb"
    assert settings.published_db == REPO_ROOT / "data" / "warehouse" / "published.duckdb"
    assert settings.versions_dir == REPO_ROOT / "data" / "warehouse" / "versions"
    assert settings.reports_dir == REPO_ROOT / "data" / "reports"
    assert settings.outbox_dir == REPO_ROOT / "data" / "outbox"


def test_relative_values_resolve_against_repo_root_not_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({"CSWH_LANDING_DIR": "elsewhere/landing", "CSWH_PII_SALT": "test-salt-16-chars"})
    assert settings.landing_dir == REPO_ROOT / "elsewhere" / "landing"
    absolute = tmp_path / "abs"
    settings = Settings.from_env({"CSWH_WAREHOUSE_DIR": str(absolute), "CSWH_PII_SALT": "test-salt-16-chars"})
    assert settings.work_db == absolute / "work.duckdb"


def test_export_env_gives_dbt_an_absolute_work_file():
    env = Settings.from_env({"CSWH_PII_SALT": "pepper-pepper-pepper"}).export_env()
    assert os.path.isabs(env["CSWH_WORK_DB"])
    assert env["CSWH_PII_SALT"] == "pepper-pepper-pepper"
    assert env["DO_NOT_TRACK"] == "1" and env["GX_ANALYTICS_ENABLED"] == "false"


def test_cli_help_lists_every_subcommand():
    out = subprocess.run([sys.executable, "-m", "dagster_project", "--help"], capture_output=True,
                         text=True, check=True, cwd=REPO_ROOT).stdout
    for command in ("generate", "run", "publish-status", "rollback", "snapshot", "bench", "dev", "docs"):
        assert command in out


def test_duckdb_memory_budget_is_one_setting_for_the_pipeline_and_dbt(tmp_path):
    import re

    from dagster_project.settings import (
        DEFAULT_DUCKDB_MEMORY_LIMIT, MEMORY_BUDGET_VARIABLE, duckdb_memory_limit, sized_memory_limit,
    )

    profile = (REPO_ROOT / "dbt" / "profiles.yml").read_text(encoding="utf-8")
    default = re.search(rf"env_var\('{MEMORY_BUDGET_VARIABLE}', '([^']+)'\)", profile).group(1)
    assert default == DEFAULT_DUCKDB_MEMORY_LIMIT
    assert duckdb_memory_limit({}) == DEFAULT_DUCKDB_MEMORY_LIMIT
    assert duckdb_memory_limit({MEMORY_BUDGET_VARIABLE: "5GB"}) == "5GB"  # what the run passed down
    assert duckdb_memory_limit({"CSWH_DUCKDB_MEMORY_LIMIT": "1GB", MEMORY_BUDGET_VARIABLE: "5GB"}) == "1GB"
    # the budget follows the landing files: half their size, at least 3 GiB, at most half the machine
    gib = 1024 ** 3
    assert sized_memory_limit(1 * gib, 24 * gib) == "3072MiB"
    assert sized_memory_limit(14 * gib, 24 * gib) == "7168MiB"
    assert sized_memory_limit(100 * gib, 24 * gib) == "12288MiB"
    landing = tmp_path / "landing" / "claims"
    landing.mkdir(parents=True)
    (landing / "2024-01-01.csv").write_bytes(b"x" * 1000)
    assert duckdb_memory_limit({}, landing_dir=tmp_path / "landing") == "3072MiB"
    exported = Settings.from_env({"CSWH_PII_SALT": "test-salt-16-chars", "CSWH_LANDING_DIR": str(tmp_path / "landing")}).export_env()
    assert exported[MEMORY_BUDGET_VARIABLE] == "3072MiB"


def test_work_file_connections_carry_the_memory_budget(tmp_path, monkeypatch):
    from dagster_project.settings import connect_work_db

    monkeypatch.setenv("CSWH_DUCKDB_MEMORY_LIMIT", "700MB")
    con = connect_work_db(tmp_path / "w.duckdb")
    try:
        limit = con.execute("select current_setting('memory_limit')").fetchone()[0]
    finally:
        con.close()
    assert limit == "667.5 MiB"  # DuckDB reports 700 MB in MiB
