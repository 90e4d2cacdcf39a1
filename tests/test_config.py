"""Settings: defaults under data/, relative values from the repository root, salt from the env."""

from __future__ import annotations

import os
import subprocess
import sys

import contextlib

import pytest

import dagster_project.settings as settings_module
from dagster_project.settings import REPO_ROOT, ConfigurationError, Settings


@contextlib.contextmanager
def activated(settings: Settings):
    """``settings.activate()`` for the block, then the process's previous budget again."""
    previous = settings_module._ACTIVE_MEMORY_LIMIT
    settings.activate()
    try:
        yield settings
    finally:
        settings_module._ACTIVE_MEMORY_LIMIT = previous


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


def test_dbt_gets_an_absolute_work_file_the_salt_and_the_budget_from_the_settings():
    settings = Settings.from_env({"CSWH_PII_SALT": "pepper-pepper-pepper"})
    env = settings.dbt_variables(parent_pid=123)
    assert os.path.isabs(env["CSWH_WORK_DB"]) and env["CSWH_WORK_DB"] == str(settings.work_db)
    assert env["CSWH_PII_SALT"] == "pepper-pepper-pepper"
    assert env["CSWH_DUCKDB_MEMORY_BUDGET"] == settings.memory_budget
    assert env["CSWH_DBT_PARENT_PID"] == "123"
    assert env["DO_NOT_TRACK"] == "1" and env["GX_ANALYTICS_ENABLED"] == "false"
    # a child process's Settings.from_env() equals these settings
    assert Settings.from_env(settings.child_env()) == settings


def test_the_engine_switch_gives_dbt_the_spark_target_the_lake_and_the_catalog(tmp_path):
    base = {"CSWH_PII_SALT": "pepper-pepper-pepper", "CSWH_WAREHOUSE_DIR": str(tmp_path / "wh")}
    duck = Settings.from_env(base)
    assert duck.engine == "duckdb" and "DBT_TARGET" not in duck.dbt_variables()
    spark = Settings.from_env({**base, "CSWH_ENGINE": "Spark", "CSWH_SPARK_MASTER": "local[1]",
                               "CSWH_LAKE_DIR": str(tmp_path / "lake")})
    env = spark.dbt_variables()
    assert spark.engine == "spark" and env["DBT_TARGET"] == "spark"
    assert env["CSWH_LAKE_DIR"] == str(tmp_path / "lake")
    assert env["CSWH_SPARK_DIR"] == str(tmp_path / "wh" / "spark") and env["CSWH_SPARK_MASTER"] == "local[1]"
    assert env["SPARK_LOCAL_DIRS"].startswith(str(tmp_path / "wh" / "spark"))
    # the child process of a Spark run sees the same settings
    assert Settings.from_env(spark.child_env()) == spark
    with pytest.raises(ConfigurationError, match="CSWH_ENGINE must be one of duckdb, spark, got 'postgres'"):
        Settings.from_env({**base, "CSWH_ENGINE": "postgres"})


def test_the_dbt_launcher_takes_over_the_variables_its_parent_left(tmp_path):
    """The handover dagster-dbt allows (it starts dbt with a copy of the parent's environment and
    the invocation's target folder as DBT_TARGET_PATH): the file is owner-only and gone after."""
    import stat

    from dagster_project.settings import CHILD_ENV_FILE, write_child_env

    settings = Settings.from_env({"CSWH_PII_SALT": "pepper-pepper-pepper", "CSWH_WAREHOUSE_DIR": str(tmp_path / "wh")})
    path = write_child_env(tmp_path / "target", settings.dbt_variables())
    assert path.name == CHILD_ENV_FILE and stat.S_IMODE(path.stat().st_mode) == 0o600
    code = ("import os; from dagster_project.settings import adopt_child_env; "
            "print(adopt_child_env(), os.environ['CSWH_WORK_DB'], os.environ['CSWH_PII_SALT'])")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSWH_")}
    out = subprocess.run([sys.executable, "-c", code], env={**env, "DBT_TARGET_PATH": str(tmp_path / "target")},
                         capture_output=True, text=True, check=True, cwd=REPO_ROOT).stdout.split()
    assert out == ["True", str(settings.work_db), "pepper-pepper-pepper"]
    assert not path.exists()


def test_cli_help_lists_every_subcommand():
    out = subprocess.run([sys.executable, "-m", "dagster_project", "--help"], capture_output=True,
                         text=True, check=True, cwd=REPO_ROOT).stdout
    for command in ("generate", "run", "publish-status", "rollback", "snapshot", "bench", "dev", "docs"):
        assert command in out


def test_every_cli_option_of_every_command_has_help():
    import argparse

    from dagster_project.cli import build_parser

    parser = build_parser()
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    described = {choice.dest: choice.help for choice in sub._choices_actions}
    assert set(described) == set(sub.choices) and all(described.values())
    missing = [f"{name} {action.option_strings or action.dest}"
               for name, command in sub.choices.items() for action in command._actions
               if not isinstance(action, argparse._HelpAction)
               and (not action.help or action.help == argparse.SUPPRESS)]
    assert missing == []
    # and argparse shows it: the rollback options in its --help
    text = sub.choices["rollback"].format_help()
    assert "--to VERSION" in text and "--yes" in text and "confirmation" in text


def test_duckdb_memory_budget_is_one_setting_for_the_pipeline_and_dbt(tmp_path):
    import re

    from dagster_project.settings import (
        DEFAULT_DUCKDB_MEMORY_LIMIT, MEMORY_BUDGET_VARIABLE, duckdb_memory_limit, sized_memory_limit,
    )

    profile = (REPO_ROOT / "dbt" / "profiles.yml").read_text(encoding="utf-8")
    default = re.search(rf"env_var\('{MEMORY_BUDGET_VARIABLE}', '([^']+)'\)", profile).group(1)
    assert default == DEFAULT_DUCKDB_MEMORY_LIMIT
    assert Settings.from_env({"CSWH_PII_SALT": "test-salt-16-chars", "CSWH_DUCKDB_MEMORY_LIMIT": "1GB"}).memory_budget == "1GB"
    # the budget follows the landing files: half their size, at least 3 GiB, at most half the machine
    gib = 1024 ** 3
    assert sized_memory_limit(1 * gib, 24 * gib) == "3072MiB"
    assert sized_memory_limit(14 * gib, 24 * gib) == "7168MiB"
    assert sized_memory_limit(100 * gib, 24 * gib) == "12288MiB"
    landing = tmp_path / "landing" / "claims"
    landing.mkdir(parents=True)
    (landing / "2024-01-01.csv").write_bytes(b"x" * 1000)
    settings = Settings.from_env({"CSWH_PII_SALT": "test-salt-16-chars", "CSWH_LANDING_DIR": str(tmp_path / "landing")})
    assert settings.memory_budget == "3072MiB"
    assert settings.dbt_variables()[MEMORY_BUDGET_VARIABLE] == "3072MiB"
    # the process's connections use the budget of the settings it activated
    with activated(settings):
        assert duckdb_memory_limit() == "3072MiB"


def test_work_file_connections_carry_the_memory_budget(tmp_path):
    from dagster_project.settings import connect_work_db

    with activated(Settings.from_env({"CSWH_PII_SALT": "test-salt-16-chars", "CSWH_DUCKDB_MEMORY_LIMIT": "700MB"})):
        con = connect_work_db(tmp_path / "w.duckdb")
        try:
            limit = con.execute("select current_setting('memory_limit')").fetchone()[0]
        finally:
            con.close()
    assert limit == "667.5 MiB"  # DuckDB reports 700 MB in MiB
