"""E-mail delivery: a real SMTP conversation with a local aiosmtpd server, the outbox, the ledger."""

from __future__ import annotations

import email
import socket
from email import policy

import duckdb
import pytest
from aiosmtpd.controller import Controller

from dagster_project.lib.report.mailer import SmtpConfig, SmtpConfigError, subject_for
from dagster_project.lib.report.snapshot import run_snapshot

SUBJECT = "客服质量月报 Customer-service KPI snapshot 2024-06"


class Collector:
    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def smtp_server():
    collector = Collector()
    controller = Controller(collector, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield collector, controller.port
    finally:
        controller.stop()


def _env(port, **extra):
    return {"CSWH_SMTP_HOST": "127.0.0.1", "CSWH_SMTP_PORT": str(port), "CSWH_SMTP_FROM": "dw@insurer.example",
            "CSWH_SMTP_TO": "ceo@insurer.example, qa-head@insurer.example", "CSWH_SMTP_STARTTLS": "false", **extra}


def _ledger(settings):
    with duckdb.connect(str(settings.work_db), read_only=True) as con:
        return con.execute("SELECT status, transport, resend, detail FROM reporting.snapshot_deliveries "
                           "ORDER BY attempt").fetchall()


def test_message_arrives_with_subject_recipients_html_and_csv(snap_settings, smtp_server):
    collector, port = smtp_server
    result = run_snapshot(snap_settings, "2024-06", env=_env(port))
    assert result.ok and result.delivery.status == "delivered" and result.delivery.transport == "smtp"
    assert len(collector.envelopes) == 1
    envelope = collector.envelopes[0]
    assert envelope.mail_from == "dw@insurer.example"
    assert sorted(envelope.rcpt_tos) == ["ceo@insurer.example", "qa-head@insurer.example"]
    msg = email.message_from_bytes(envelope.original_content, policy=policy.default)
    assert msg["Subject"] == SUBJECT
    assert msg["To"] == "ceo@insurer.example, qa-head@insurer.example"
    html_part = msg.get_body(preferencelist=("html",))
    # SMTP carries text with CRLF line ends
    assert html_part.get_content().replace("\r\n", "\n") == result.html_path.read_text(encoding="utf-8")
    attachments = list(msg.iter_attachments())
    assert [a.get_filename() for a in attachments] == ["kpi-2024-06.csv"]
    assert attachments[0].get_content_type() == "text/csv"
    assert attachments[0].get_payload(decode=True) == result.csv_path.read_bytes()
    assert [row[:3] for row in _ledger(snap_settings)] == [("DELIVERED", "smtp", False)]
    assert not list(snap_settings.outbox_dir.glob("*.eml"))


def test_second_run_does_not_send_again_and_resend_does(snap_settings, smtp_server):
    collector, port = smtp_server
    run_snapshot(snap_settings, "2024-06", env=_env(port))
    again = run_snapshot(snap_settings, "2024-06", env=_env(port))
    assert again.ok and again.delivery.status == "already sent" and "--resend" in again.delivery.detail
    assert len(collector.envelopes) == 1
    resent = run_snapshot(snap_settings, "2024-06", resend=True, env=_env(port))
    assert resent.delivery.status == "delivered" and len(collector.envelopes) == 2
    assert [row[:3] for row in _ledger(snap_settings)] == [("DELIVERED", "smtp", False), ("DELIVERED", "smtp", True)]


def test_without_smtp_settings_the_message_goes_to_the_outbox_once(snap_settings):
    result = run_snapshot(snap_settings, "2024-06", env={"CSWH_SMTP_TO": "ceo@insurer.example"})
    emls = sorted(snap_settings.outbox_dir.glob("*.eml"))
    assert [p.name for p in emls] == ["kpi-2024-06-001.eml"] and result.delivery.location == str(emls[0])
    msg = email.message_from_bytes(emls[0].read_bytes(), policy=policy.default)
    assert msg["Subject"] == SUBJECT and msg["To"] == "ceo@insurer.example"
    assert [a.get_filename() for a in msg.iter_attachments()] == ["kpi-2024-06.csv"]
    assert "<svg" in msg.get_body(preferencelist=("html",)).get_content()
    run_snapshot(snap_settings, "2024-06", env={})
    assert len(list(snap_settings.outbox_dir.glob("*.eml"))) == 1
    run_snapshot(snap_settings, "2024-06", resend=True, env={})
    assert sorted(p.name for p in snap_settings.outbox_dir.glob("*.eml")) == ["kpi-2024-06-001.eml",
                                                                               "kpi-2024-06-002.eml"]


def test_failed_delivery_is_recorded_and_retried_by_the_next_run(snap_settings, smtp_server):
    collector, port = smtp_server
    closed = _free_port()  # nothing listens there: connection refused
    failed = run_snapshot(snap_settings, "2024-06", env=_env(closed, CSWH_SMTP_PASSWORD="s3cret",
                                                             CSWH_SMTP_USER="dw"))
    assert not failed.ok and failed.delivery.status == "failed"
    assert f"127.0.0.1:{closed}" in failed.delivery.detail and "s3cret" not in failed.delivery.detail
    assert failed.html_path.exists() and failed.csv_path.exists()  # the snapshot is not lost
    assert [row[:2] for row in _ledger(snap_settings)] == [("FAILED", "smtp")]
    retry = run_snapshot(snap_settings, "2024-06", env=_env(port))
    assert retry.ok and retry.delivery.status == "delivered" and not retry.new_revision
    assert len(collector.envelopes) == 1
    assert [row[:2] for row in _ledger(snap_settings)] == [("FAILED", "smtp"), ("DELIVERED", "smtp")]


def test_smtp_config_from_env():
    assert SmtpConfig.from_env({}) is None
    config = SmtpConfig.from_env({"CSWH_SMTP_HOST": "mail.example", "CSWH_SMTP_TO": "a@x, b@x",
                                  "CSWH_SMTP_STARTTLS": "true"})
    assert (config.port, config.starttls, config.recipients) == (587, True, ("a@x", "b@x"))
    assert SmtpConfig.from_env({"CSWH_SMTP_HOST": "h", "CSWH_SMTP_TO": "a@x"}).port == 25
    with pytest.raises(SmtpConfigError, match="CSWH_SMTP_TO"):
        SmtpConfig.from_env({"CSWH_SMTP_HOST": "mail.example"})
    with pytest.raises(SmtpConfigError, match="CSWH_SMTP_PORT"):
        SmtpConfig.from_env({"CSWH_SMTP_HOST": "h", "CSWH_SMTP_TO": "a@x", "CSWH_SMTP_PORT": "smtp"})
    with pytest.raises(SmtpConfigError, match="STARTTLS"):
        SmtpConfig.from_env({"CSWH_SMTP_HOST": "h", "CSWH_SMTP_TO": "a@x", "CSWH_SMTP_STARTTLS": "maybe"})
    assert subject_for("2024-06") == SUBJECT
    assert subject_for("2024-06", 2) == SUBJECT + " (修订 revision 2)"
