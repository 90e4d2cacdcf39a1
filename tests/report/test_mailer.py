"""E-mail delivery: a real SMTP conversation with a local aiosmtpd server, the outbox, the ledger."""

from __future__ import annotations

import email
import re
import socket
from email import policy
from html.parser import HTMLParser

import duckdb
import pytest
from aiosmtpd.controller import Controller

from dagster_project.lib.report.mail_html import TILE_METRICS
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


def _cids(html: str) -> list[str]:
    return re.findall(r'src="cid:([^"]+)"', html)


def _check_structure(msg, result) -> None:
    """multipart/mixed: [alternative: [text/plain, related: [text/html, image/png...]], html, csv];
    every cid: in the HTML has its image/png part, each image has alt text."""
    assert msg.get_content_type() == "multipart/mixed"
    alternative, *attachments = msg.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    plain, related = alternative.iter_parts()
    assert plain.get_content_type() == "text/plain" and related.get_content_type() == "multipart/related"
    html_part, *images = related.iter_parts()
    assert html_part.get_content_type() == "text/html"
    assert images and all(i.get_content_type() == "image/png" for i in images)
    assert all(i.get_payload(decode=True).startswith(b"\x89PNG\r\n\x1a\n") for i in images)
    html = html_part.get_content()
    part_ids = sorted(i["Content-ID"].strip("<>") for i in images)
    assert sorted(_cids(html)) == part_ids and len(set(part_ids)) == len(part_ids)
    for tag in re.findall(r"<img [^>]*>", html):
        alt = re.search(r'alt="([^"]*)"', tag)
        assert alt and len(alt.group(1)) > 30, tag  # says what the chart shows, not just "chart"
    assert [a.get_filename() for a in attachments] == ["kpi-2024-06.html", "kpi-2024-06.csv"]
    assert [a.get_content_type() for a in attachments] == ["text/html", "text/csv"]
    assert attachments[0].get_content_charset() == "utf-8"
    assert attachments[0].get_payload(decode=True) == result.html_path.read_bytes()
    assert attachments[1].get_payload(decode=True) == result.csv_path.read_bytes()


def test_each_recipient_gets_a_message_with_inline_png_charts_html_and_csv(snap_settings, smtp_server):
    collector, port = smtp_server
    result = run_snapshot(snap_settings, "2024-06", env=_env(port))
    assert result.ok and result.delivery.status == "delivered" and result.delivery.transport == "smtp"
    assert result.delivery.detail.startswith(f"delivered to 2 recipients via 127.0.0.1:{port}")
    # one SMTP transaction per recipient, each with that recipient in To:
    assert sorted(tuple(e.rcpt_tos) for e in collector.envelopes) == [("ceo@insurer.example",),
                                                                      ("qa-head@insurer.example",)]
    for envelope in collector.envelopes:
        assert envelope.mail_from == "dw@insurer.example"
        msg = email.message_from_bytes(envelope.original_content, policy=policy.default)
        assert msg["Subject"] == SUBJECT and msg["To"] == envelope.rcpt_tos[0]
        _check_structure(msg, result)
    assert [row[:3] for row in _ledger(snap_settings)] == [("DELIVERED", "smtp", False)]
    assert not list(snap_settings.outbox_dir.glob("*.eml"))


class RefusingCollector(Collector):
    """Refuses one address at RCPT TO, as a server does for an unknown mailbox."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address == "gone@insurer.example":
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def test_refused_recipient_is_not_counted_as_delivered(snap_settings):
    collector = RefusingCollector()
    controller = Controller(collector, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        env = _env(controller.port, CSWH_SMTP_TO="ceo@insurer.example, gone@insurer.example")
        result = run_snapshot(snap_settings, "2024-06", env=env)
        assert result.delivery.status == "delivered"
        assert result.delivery.detail.startswith("delivered to 1 recipient via")
        assert "refused by the server: gone@insurer.example (550" in result.delivery.detail
        assert [e.rcpt_tos for e in collector.envelopes] == [["ceo@insurer.example"]]
        with duckdb.connect(str(snap_settings.work_db), read_only=True) as con:
            assert con.execute("SELECT recipients FROM reporting.snapshot_deliveries").fetchall() == \
                [("ceo@insurer.example",)]
        # every recipient refused: nothing was delivered, and the next run tries again
        env = _env(controller.port, CSWH_SMTP_TO="gone@insurer.example")
        failed = run_snapshot(snap_settings, "2024-06", resend=True, env=env)
        assert failed.delivery.status == "failed" and "delivered" not in failed.delivery.detail
    finally:
        controller.stop()


def test_second_run_does_not_send_again_and_resend_does(snap_settings, smtp_server):
    collector, port = smtp_server
    run_snapshot(snap_settings, "2024-06", env=_env(port))
    again = run_snapshot(snap_settings, "2024-06", env=_env(port))
    assert again.ok and again.delivery.status == "already sent" and "--resend" in again.delivery.detail
    assert len(collector.envelopes) == 2  # the first run's two recipients, nothing more
    resent = run_snapshot(snap_settings, "2024-06", resend=True, env=_env(port))
    assert resent.delivery.status == "delivered" and len(collector.envelopes) == 4
    assert [row[:3] for row in _ledger(snap_settings)] == [("DELIVERED", "smtp", False), ("DELIVERED", "smtp", True)]


def test_without_smtp_settings_each_recipient_gets_an_eml_in_the_outbox_once(snap_settings):
    env = {"CSWH_SMTP_TO": "ceo@insurer.example, qa-head@insurer.example"}
    result = run_snapshot(snap_settings, "2024-06", env=env)
    assert result.delivery.status == "written to the outbox" and "delivered" not in result.delivery.detail
    assert result.delivery.detail.startswith("written to the outbox (2 files)")
    emls = sorted(snap_settings.outbox_dir.glob("*.eml"))
    assert [p.name for p in emls] == ["kpi-2024-06-001-ceo_at_insurer.example.eml",
                                      "kpi-2024-06-001-qa-head_at_insurer.example.eml"]
    assert sorted(result.delivery.files) == [str(p) for p in emls]
    parsed = [email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in emls]
    assert [m["To"] for m in parsed] == ["ceo@insurer.example", "qa-head@insurer.example"]
    for msg in parsed:
        assert msg["Subject"] == SUBJECT
        _check_structure(msg, result)
    assert b"undisclosed-recipients" not in emls[0].read_bytes()
    run_snapshot(snap_settings, "2024-06", env=env)  # already written: not again
    assert len(list(snap_settings.outbox_dir.glob("*.eml"))) == 2
    resent = run_snapshot(snap_settings, "2024-06", resend=True, env={})
    # no recipient configured at all: one file, without a To: line, and the outcome says why
    assert "no recipient is configured" in resent.delivery.detail
    [unaddressed] = [p for p in snap_settings.outbox_dir.glob("*.eml") if p not in emls]
    assert unaddressed.name == "kpi-2024-06-002.eml"
    assert email.message_from_bytes(unaddressed.read_bytes(), policy=policy.default)["To"] is None


def _strict_client_view(html: str) -> str:
    """What a strict mail client keeps: no <style> block, no inline SVG, no class-based styling."""
    html = re.sub(r"<style\b.*?</style>", "", html, flags=re.S | re.I)
    html = re.sub(r"<svg\b.*?</svg>", "", html, flags=re.S | re.I)
    return re.sub(r'\sclass="[^"]*"', "", html)


class _Elements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs, self.tile_values, self.tables, self.styles = [], [], 0, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.styles.append(attrs.get("style") or "")
        if tag == "img":
            self.imgs.append(attrs)
        elif tag == "table":
            self.tables += 1
        elif tag == "span" and attrs.get("data-branch") == "ALL":
            self.tile_values.append(attrs["data-metric"])


def test_a_strict_client_still_sees_every_tile_and_chart(snap_settings):
    result = run_snapshot(snap_settings, "2024-06", env={"CSWH_SMTP_TO": "ceo@insurer.example"})
    [eml] = snap_settings.outbox_dir.glob("*.eml")
    msg = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
    mailed = msg.get_body(preferencelist=("html",)).get_content()
    assert "<style" not in mailed and "<svg" not in mailed and "flex" not in mailed and "class=" not in mailed
    assert "<script>alert(1)</script>" not in mailed  # data text stays text (the test file's evil branch code)
    strict = _strict_client_view(mailed)
    assert strict == mailed  # nothing in the mailed body depends on what strict clients remove
    seen = _Elements()
    seen.feed(strict)
    # the charts: every <img> is a cid: reference with alt text
    assert len(seen.imgs) == 5 and all(i["src"].startswith("cid:") and i["alt"] for i in seen.imgs)
    # the tiles: one per company KPI the snapshot recorded, each with its value
    with duckdb.connect(str(snap_settings.work_db), read_only=True) as con:
        recorded = {m for (m,) in con.execute("SELECT metric FROM marts.kpi_snapshots WHERE branch_code = 'ALL' "
                                              "AND period = '2024-06'").fetchall()}
    tiles = set(TILE_METRICS) & recorded
    assert tiles and tiles <= set(seen.tile_values)
    assert seen.tables >= 6 and not any("flex" in s or "grid" in s.replace("grid-", "") for s in seen.styles)
    # the browser report, seen the same way, loses its charts (that is why the mail is different)
    browser = _strict_client_view(result.html_path.read_text(encoding="utf-8"))
    browser_seen = _Elements()
    browser_seen.feed(browser)
    assert not browser_seen.imgs and "<svg" in result.html_path.read_text(encoding="utf-8")


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
    assert len(collector.envelopes) == 2  # one message per recipient
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


def test_make_dev_never_mails_by_surprise(snap_settings, smtp_server):
    """`make dev` runs `cs-warehouse dev` (no --send-mail): the UI's runs and schedules read an
    environment without the SMTP server, so a snapshot from there writes the outbox, even when the
    developer's shell has the production mail settings."""
    from dagster_project.cli import dev_environment
    from dagster_project.settings import REPO_ROOT, Settings

    collector, port = smtp_server
    shell = snap_settings.with_overrides(smtp=_env(port, CSWH_SMTP_PASSWORD="s3cret"))
    child = Settings.from_env(dev_environment(shell))  # what dagster dev and the runs it launches read
    assert "CSWH_SMTP_HOST" not in child.smtp and "CSWH_SMTP_PASSWORD" not in child.smtp
    assert child.smtp["CSWH_SMTP_TO"] == shell.smtp["CSWH_SMTP_TO"]  # outbox files still addressed
    result = run_snapshot(child, "2024-06")
    assert result.delivery.status == "written to the outbox" and collector.envelopes == []
    assert len(list(child.outbox_dir.glob("*.eml"))) == 2
    # asked for explicitly, it does send
    sending = Settings.from_env(dev_environment(shell, send_mail=True))
    assert run_snapshot(sending, "2024-06", resend=True).delivery.detail.startswith("delivered to 2 recipients")
    assert len(collector.envelopes) == 2
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    [recipe] = re.findall(r"^dev:.*\n\t(.*)$", makefile, re.M)
    assert recipe.endswith("cs-warehouse dev")


def test_a_branch_without_a_value_keeps_its_row_in_the_chart(snap_settings):
    """A month in which a branch closed no complaint has no p90: its bar is a dash, and the alt
    text names the extremes among the branches that have a value."""
    from tests.report.conftest import change_published

    change_published(snap_settings, "UPDATE marts.mart_complaints SET handling_days_p90 = NULL "
                                    "WHERE branch_code = 'SC' AND month = DATE '2024-06-01'")
    result = run_snapshot(snap_settings, "2024-06", env={"CSWH_SMTP_TO": "ceo@insurer.example"})
    assert result.delivery.status == "written to the outbox"
    [eml] = snap_settings.outbox_dir.glob("*.eml")
    html = email.message_from_bytes(eml.read_bytes(), policy=policy.default).get_body(("html",)).get_content()
    [alt] = re.findall(r'<img src="cid:complaint-p90[^"]*" alt="([^"]*)"', html)
    assert "3 bars; highest JL 13.0 d, lowest &lt;script&gt;alert(1)&lt;/script&gt; 8.0 d" in alt


def test_a_ledger_from_before_the_branch_pages_keeps_its_history(tmp_path):
    """A work file whose ledger has no audience column: its rows stay the company report's, so a
    delivered period is not sent again after the upgrade, and a branch page is still sent."""
    from dagster_project.lib.report.mailer import attempts, ensure_ledger, should_send

    path = tmp_path / "work.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA reporting")
        con.execute("""CREATE TABLE reporting.snapshot_deliveries (period VARCHAR NOT NULL, attempt INTEGER NOT NULL,
            revision INTEGER NOT NULL, attempted_at TIMESTAMP NOT NULL, status VARCHAR NOT NULL, transport VARCHAR NOT NULL,
            recipients VARCHAR, subject VARCHAR, message_id VARCHAR, location VARCHAR, detail VARCHAR,
            resend BOOLEAN NOT NULL, PRIMARY KEY (period, attempt))""")
        con.execute("INSERT INTO reporting.snapshot_deliveries VALUES ('2024-06', 1, 1, TIMESTAMP '2024-07-01 08:00', "
                    "'DELIVERED', 'smtp', 'ceo@insurer.example', 's', 'm', 'h:25', 'sent', false)")
        ensure_ledger(con)
        [old] = attempts(con, "2024-06")
        assert (old.audience, old.status, old.recipients) == ("ALL", "DELIVERED", "ceo@insurer.example")
        assert not should_send([old], resend=False)
        assert attempts(con, "2024-06", "JL") == [] and should_send([], resend=False)
