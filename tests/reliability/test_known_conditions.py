"""Known conditions get a clear message and an exit code, never a traceback; files the pipeline
creates are private from creation; the PII salt is refused when empty, short or changed."""

from __future__ import annotations

import errno
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from dagster_project.lib.ingest.guard import (
    DiskFull, RunLock, WarehouseBusy, WarehouseUnwritable, known_condition, scrub,
)
from dagster_project.settings import REPO_ROOT, ConfigurationError, Settings

from tests.conftest import make_settings


def _cli(args, env_changes, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSWH_")}
    env.update({"CSWH_LANDING_DIR": str(tmp_path / "landing"), "CSWH_WAREHOUSE_DIR": str(tmp_path / "wh"),
                "CSWH_REPORTS_DIR": str(tmp_path / "reports"), "CSWH_OUTBOX_DIR": str(tmp_path / "outbox"),
                "DAGSTER_HOME": str(tmp_path / "dh")})
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.run([sys.executable, "-m", "dagster_project", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


# ------------------------------------------------------------------------------ the salt


@pytest.mark.parametrize("salt, expected", [("", "is empty"), ("   ", "is empty"), ("short-salt", "fewer than 16")])
def test_an_empty_or_short_salt_is_refused(salt, expected):
    with pytest.raises(ConfigurationError, match=expected):
        Settings.from_env({"CSWH_PII_SALT": salt})


def test_an_empty_salt_file_is_refused_with_a_clear_message(tmp_path):
    salt_file = tmp_path / ".config" / "cs-warehouse" / "pii_salt"
    salt_file.parent.mkdir(parents=True)
    salt_file.write_text("\n")
    proc = _cli(["publish-status"], {"HOME": str(tmp_path), "CSWH_PII_SALT": None}, tmp_path)
    assert proc.returncode == 2 and "is empty" in proc.stderr and "Traceback" not in proc.stderr


def test_a_home_that_is_not_a_directory_is_a_clear_message(tmp_path):
    home = tmp_path / "home-is-a-file"
    home.write_text("x")
    proc = _cli(["publish-status"], {"HOME": str(home), "CSWH_PII_SALT": None}, tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert f"is HOME={home} a writable directory?" in proc.stderr and "Traceback" not in proc.stderr


def test_the_default_salt_file_is_created_private_in_one_step(tmp_path, monkeypatch):
    import dagster_project.settings as settings_module

    target = tmp_path / "cfg" / "pii_salt"
    monkeypatch.setattr(settings_module, "DEFAULT_SALT_FILE", target)
    opened = []
    real_open = os.open

    def spy(path, flags, mode=0o777, *args, **kwargs):
        if Path(path) == target:
            opened.append((flags, mode))
        return real_open(path, flags, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    with pytest.warns(UserWarning):
        salt = settings_module._default_pii_salt()
    [(flags, mode)] = opened
    assert flags & os.O_CREAT and flags & os.O_EXCL and mode == 0o600
    assert stat.S_IMODE(target.stat().st_mode) == 0o600 and len(salt) == 64


def test_a_changed_salt_is_refused_unless_declared_then_it_forces_a_full_refresh(ingested_settings, copy_settings,
                                                                                   monkeypatch):
    from dagster_project.lib.transform.dbt_project import (
        SALT_CHANGE_VARIABLE, SaltChanged, full_refresh_reasons, record_salt_fingerprint, salt_change_reason,
    )

    work = copy_settings(ingested_settings, with_landing=False)
    record_salt_fingerprint(work)
    assert salt_change_reason(work) is None
    other = work.with_overrides(pii_salt="another-salt-of-enough-length")
    with pytest.raises(SaltChanged, match=SALT_CHANGE_VARIABLE):
        full_refresh_reasons(other, [])
    # CSWH_PII_SALT_CHANGED=1 in the environment is this setting
    reasons = full_refresh_reasons(other.with_overrides(pii_salt_change_intended=True), [])
    assert any("the PII salt changed" in r for r in reasons)
    with duckdb.connect(str(work.work_db), read_only=True) as con:
        [(fingerprint,)] = con.execute("SELECT fingerprint FROM raw._pii_salt_fingerprint").fetchall()
    assert work.pii_salt not in fingerprint and len(fingerprint) == 16  # a fingerprint, never the salt


def test_the_cli_refuses_a_changed_salt_before_running(ingested_settings, copy_settings, tmp_path):
    from dagster_project.lib.transform.dbt_project import record_salt_fingerprint

    work = copy_settings(ingested_settings, with_landing=False)
    record_salt_fingerprint(work)
    env = {"CSWH_LANDING_DIR": str(work.landing_dir), "CSWH_WAREHOUSE_DIR": str(work.warehouse_dir),
           "CSWH_PII_SALT": "a-different-salt-value"}
    proc = _cli(["run"], env, tmp_path)
    assert proc.returncode == 2 and "CSWH_PII_SALT_CHANGED=1" in proc.stderr and "Traceback" not in proc.stderr


# ------------------------------------------------------------------------------ file modes


def test_the_wal_and_the_spill_folder_are_private_while_they_exist(tmp_path):
    from dagster_project.lib.ingest.loader import connect

    old = os.umask(0o022)
    try:
        settings = make_settings(tmp_path)
        con = connect(settings)
        con.execute("CREATE TABLE raw.t AS SELECT range AS i FROM range(1000)")
        con.execute("INSERT INTO raw.t VALUES (1)")
        wal = Path(str(settings.work_db) + ".wal")
        assert wal.exists() and stat.S_IMODE(wal.stat().st_mode) == 0o600
        assert stat.S_IMODE(settings.work_db.stat().st_mode) == 0o600
        con.execute(f"SET temp_directory = '{settings.warehouse_dir / 'spill'}'")
        con.execute("SET memory_limit = '64MB'")
        con.execute("SELECT count(*) FROM (SELECT range AS i, md5(range::VARCHAR) AS h FROM range(3000000) ORDER BY h)")
        for path in (settings.warehouse_dir / "spill").rglob("*") if (settings.warehouse_dir / "spill").exists() else []:
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
        con.close()
    finally:
        os.umask(old)


# ------------------------------------------------------------------------------ known conditions


def test_known_conditions_are_recognised():
    assert isinstance(known_condition(duckdb.IOException('IO Error: Could not set lock on file "w.duckdb": '
                                                         'Conflicting lock is held in python (PID 42)'), "w"),
                      WarehouseBusy)
    assert "process 42" in str(known_condition(duckdb.IOException("Conflicting lock is held in x (PID 42)"), "w"))
    assert isinstance(known_condition(OSError(errno.ENOSPC, "No space left on device"), "w"), DiskFull)
    assert isinstance(known_condition(OSError(errno.EROFS, "Read-only file system"), "w"), WarehouseUnwritable)
    assert isinstance(known_condition(OSError(errno.EACCES, "Permission denied"), "w"), WarehouseUnwritable)
    assert known_condition(ValueError("x"), "w") is None


def test_a_read_only_warehouse_is_a_message_not_a_traceback(monkeypatch, capsys, tmp_path):
    import dagster_project.cli as cli

    def read_only(settings):
        raise OSError(errno.EROFS, "Read-only file system", str(settings.warehouse_dir))

    monkeypatch.setattr(cli, "ensure_dirs", read_only)
    monkeypatch.setenv("CSWH_PII_SALT", "test-salt-16-chars-long")
    assert cli.main(["publish-status"]) == 2
    assert "cannot be written (read-only file system)" in capsys.readouterr().err


def test_a_second_run_lock_is_refused(tmp_path):
    first = RunLock(tmp_path, tmp_path / "work.duckdb")
    try:
        with pytest.raises(WarehouseBusy, match=f"process {os.getpid()}") as caught:
            RunLock(tmp_path, tmp_path / "work.duckdb")
        assert caught.value.exit_code == 4
    finally:
        first.release()
    RunLock(tmp_path, tmp_path / "work.duckdb").release()  # free again


def test_scrub_removes_quoted_text_non_ascii_and_long_digit_runs():
    text = ("Invalid Input Error: CSV Error on Line: 3\nOriginal Line: PJL1,张三,13812345678\n")
    assert scrub(text) == "Invalid Input Error: CSV Error on (details withheld)"
    assert scrub("Conversion Error: could not convert '张三 13812345678' to INT32") == \
        "Conversion Error: could not convert <...> to INT32"
    assert scrub("value 110101199001011234 here") == "value <digits> here"


def test_a_truncated_dbt_manifest_forces_a_full_refresh_instead_of_failing(ingested_settings, copy_settings):
    from dagster_project.lib.transform.dbt_project import (
        _looks_complete, dbt_target_dir, full_refresh_reasons,
    )

    work = copy_settings(ingested_settings, with_landing=False)
    target = dbt_target_dir(work)
    target.mkdir(parents=True, exist_ok=True)
    (target / "manifest.json").write_text('{"nodes": {"model.x": {"name"', encoding="utf-8")
    (target / "partial_parse.msgpack").write_bytes(b"\x81\xa3")
    assert not _looks_complete(target / "manifest.json")
    reasons = full_refresh_reasons(work, [])
    assert any("manifest is unreadable" in r for r in reasons)
    assert not (target / "manifest.json").exists() and not (target / "partial_parse.msgpack").exists()


# ------------------------------------------------------------------------------ SMTP


class _Collector:
    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 OK"


def test_a_non_ascii_smtp_password_is_sent_as_utf8():
    from email.message import EmailMessage

    from dagster_project.lib.report.mailer import SmtpConfig, send_smtp

    seen = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        seen.append((mechanism, auth_data.login, auth_data.password))
        ok = auth_data.login == "报表".encode() and auth_data.password == "密码-pässwörd".encode()
        return AuthResult(success=ok)

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    collector = _Collector()
    controller = Controller(collector, hostname="127.0.0.1", port=port, authenticator=authenticator,
                            auth_require_tls=False)
    controller.start()
    try:
        config = SmtpConfig(host="127.0.0.1", port=port, user="报表", password="密码-pässwörd",
                            sender="dw@insurer.example", recipients=("ceo@insurer.example",), starttls=False)
        msg = EmailMessage()
        msg["Subject"], msg["From"], msg["To"] = "KPI", "dw@insurer.example", "ceo@insurer.example"
        msg.set_content("hello")
        accepted, refused = send_smtp(config, [("ceo@insurer.example", msg)])
    finally:
        controller.stop()
    assert (accepted, refused) == (["ceo@insurer.example"], {})
    assert seen and seen[0][0] in ("PLAIN", "LOGIN") and len(collector.envelopes) == 1
