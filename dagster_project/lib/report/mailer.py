"""E-mail the monthly snapshot, once per period, with a ledger of every attempt.

Configuration comes from the environment only (secrets never live in files), through
``Settings.smtp`` (the CSWH_SMTP_* variables ``settings.py`` read):
``CSWH_SMTP_HOST``, ``CSWH_SMTP_PORT`` (default 587 with STARTTLS, else 25), ``CSWH_SMTP_USER``,
``CSWH_SMTP_PASSWORD``, ``CSWH_SMTP_FROM``, ``CSWH_SMTP_TO`` (comma-separated) and
``CSWH_SMTP_STARTTLS`` (true/false). Without ``CSWH_SMTP_HOST`` the message is written to the outbox
folder as an ``.eml`` file instead, which counts as delivered.

The ledger (``reporting.snapshot_deliveries`` in the work file) records every attempt. A period with
a delivered attempt is not sent again unless ``resend``; a failed attempt is recorded with its reason
and the next run tries again. The snapshot itself (history rows, HTML, CSV) is written before any
attempt, so a delivery failure never loses it. Delivery is at-least-once: a crash between the SMTP
server accepting the message and the ledger row being written means the next run sends it again.
"""

from __future__ import annotations

import base64
import os
import smtplib
import socket
import ssl
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Mapping
from zoneinfo import ZoneInfo

import duckdb

from dagster_project.settings import connect_work_db

LEDGER_TABLE = "reporting.snapshot_deliveries"
DELIVERED, FAILED = "DELIVERED", "FAILED"
LOCAL_TZ = ZoneInfo("Asia/Shanghai")
SUBJECT_PREFIX = "客服质量月报 Customer-service KPI snapshot"
DEFAULT_SENDER = "cs-warehouse@localhost"
SMTP_TIMEOUT_SECONDS = 30


class SmtpConfigError(ValueError):
    pass


def _truthy(value: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("", "0", "false", "no", "off"):
        return False
    raise SmtpConfigError(f"CSWH_SMTP_STARTTLS must be true or false, got {value!r}")


def parse_recipients(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    user: str | None
    password: str | None
    sender: str
    recipients: tuple[str, ...]
    starttls: bool

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "SmtpConfig | None":
        """None when no SMTP host is configured (the outbox is used); SmtpConfigError when the
        settings are present but unusable (named variable, reason)."""
        env = env or {}
        host = (env.get("CSWH_SMTP_HOST") or "").strip()
        if not host:
            return None
        starttls = _truthy(env.get("CSWH_SMTP_STARTTLS", "false"))
        port_text = (env.get("CSWH_SMTP_PORT") or "").strip()
        try:
            port = int(port_text) if port_text else (587 if starttls else 25)
        except ValueError:
            raise SmtpConfigError(f"CSWH_SMTP_PORT must be a number, got {port_text!r}") from None
        recipients = tuple(parse_recipients(env.get("CSWH_SMTP_TO")))
        if not recipients:
            raise SmtpConfigError("CSWH_SMTP_HOST is set but CSWH_SMTP_TO names no recipient")
        return cls(host=host, port=port, user=env.get("CSWH_SMTP_USER") or None,
                   password=env.get("CSWH_SMTP_PASSWORD") or None,
                   sender=(env.get("CSWH_SMTP_FROM") or DEFAULT_SENDER).strip(),
                   recipients=recipients, starttls=starttls)


def subject_for(period: str, revision: int = 1) -> str:
    suffix = f" (修订 revision {revision})" if revision > 1 else ""
    return f"{SUBJECT_PREFIX} {period}{suffix}"


def build_message(*, period: str, revision: int, html: str, text: str, csv_bytes: bytes,
                  csv_filename: str, sender: str, recipients: list[str] | tuple[str, ...]) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject_for(period, revision)
    msg["From"] = sender
    msg["To"] = ", ".join(recipients) if recipients else "undisclosed-recipients:;"
    msg["Date"] = formatdate(localtime=True)
    # An explicit domain: the default asks DNS for this host's FQDN, which may hang offline.
    msg["Message-ID"] = make_msgid(idstring=f"kpi-{period}-r{revision}", domain="cs-warehouse.local")
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    msg.add_attachment(csv_bytes, maintype="text", subtype="csv", filename=csv_filename)
    return msg


def send_smtp(config: SmtpConfig, msg: EmailMessage) -> dict:
    """Send through the configured server; returns the recipients the server refused (partial)."""
    # local_hostname given: smtplib would otherwise resolve this host's FQDN through DNS.
    with smtplib.SMTP(config.host, config.port, timeout=SMTP_TIMEOUT_SECONDS,
                      local_hostname=socket.gethostname() or "localhost") as smtp:
        if config.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if config.user:
            login_utf8(smtp, config.user, config.password or "")
        return smtp.send_message(msg, from_addr=config.sender, to_addrs=list(config.recipients))


def login_utf8(smtp: smtplib.SMTP, user: str, password: str) -> None:
    """AUTH PLAIN (RFC 4616) or AUTH LOGIN with the user name and password encoded as UTF-8.

    ``smtplib.SMTP.login`` encodes both as ASCII, so a password with any other character (a
    Chinese one, an accented letter) failed with a bare ``'ascii' codec can't encode``; RFC 4616
    carries UTF-8. The password is never part of an error message."""
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    smtp.ehlo_or_helo_if_needed()
    if not smtp.has_extn("auth"):
        raise smtplib.SMTPNotSupportedError("the SMTP server does not offer AUTH (CSWH_SMTP_USER is set)")
    mechanisms = smtp.esmtp_features["auth"].upper().split()
    user_bytes, password_bytes = user.encode("utf-8"), password.encode("utf-8")
    if "PLAIN" in mechanisms:
        code, response = smtp.docmd("AUTH", "PLAIN " + b64(b"\0" + user_bytes + b"\0" + password_bytes))
    elif "LOGIN" in mechanisms:
        code, response = smtp.docmd("AUTH", "LOGIN " + b64(user_bytes))
        if code == 334:
            code, response = smtp.docmd(b64(password_bytes))
    else:
        raise smtplib.SMTPNotSupportedError(f"no AUTH mechanism this client supports (server offers {mechanisms})")
    if code not in (235, 503):  # 503: already authenticated
        raise smtplib.SMTPAuthenticationError(code, response)


def write_eml(outbox_dir: Path, filename: str, msg: EmailMessage) -> Path:
    outbox_dir.mkdir(parents=True, exist_ok=True)
    target = outbox_dir / filename
    tmp = target.with_suffix(".eml.tmp")
    tmp.write_bytes(msg.as_bytes())
    os.replace(tmp, target)  # a reader of the outbox never sees half a message
    return target


# --------------------------------------------------------------------------------------------------
# the ledger


def ensure_ledger(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS reporting")
    con.execute(f"""
        CREATE TABLE IF NOT EXISTS {LEDGER_TABLE} (
            period VARCHAR NOT NULL,
            attempt INTEGER NOT NULL,
            revision INTEGER NOT NULL,
            attempted_at TIMESTAMP NOT NULL,
            status VARCHAR NOT NULL,
            transport VARCHAR NOT NULL,
            recipients VARCHAR,
            subject VARCHAR,
            message_id VARCHAR,
            location VARCHAR,
            detail VARCHAR,
            resend BOOLEAN NOT NULL,
            PRIMARY KEY (period, attempt)
        )""")


@dataclass(frozen=True)
class Attempt:
    period: str
    attempt: int  # 1, 2, ... per period
    revision: int
    attempted_at: datetime
    status: str
    transport: str
    recipients: str | None
    subject: str | None
    message_id: str | None
    location: str | None
    detail: str | None
    resend: bool


def attempts(con: duckdb.DuckDBPyConnection, period: str) -> list[Attempt]:
    ensure_ledger(con)
    rows = con.execute(f"SELECT * FROM {LEDGER_TABLE} WHERE period = ? ORDER BY attempt",
                       [period]).fetchall()
    return [Attempt(*row) for row in rows]


def record_attempt(con: duckdb.DuckDBPyConnection, attempt: Attempt) -> None:
    ensure_ledger(con)
    con.execute(f"INSERT INTO {LEDGER_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [attempt.period, attempt.attempt, attempt.revision, attempt.attempted_at, attempt.status,
                 attempt.transport, attempt.recipients, attempt.subject, attempt.message_id,
                 attempt.location, attempt.detail, attempt.resend])


def should_send(history: list[Attempt], resend: bool) -> bool:
    """Send unless a previous attempt for the period was delivered (failures are retried)."""
    return resend or not any(a.status == DELIVERED for a in history)


@dataclass(frozen=True)
class DeliveryOutcome:
    status: str  # "delivered" | "already sent" | "failed"
    transport: str | None  # "smtp" | "outbox"
    detail: str
    location: str | None = None  # .eml path or host:port

    @property
    def ok(self) -> bool:
        return self.status != "failed"


def deliver(work_db: Path, outbox_dir: Path, *, period: str, revision: int, html: str, text: str,
            csv_bytes: bytes, csv_filename: str, resend: bool = False,
            env: Mapping[str, str] | None = None) -> DeliveryOutcome:
    """Send (or write to the outbox) the period's report unless it was delivered before."""
    with connect_work_db(work_db) as con:
        history = attempts(con, period)
    if not should_send(history, resend):
        first = next(a for a in history if a.status == DELIVERED)
        return DeliveryOutcome("already sent", first.transport,
                               f"already delivered on {first.attempted_at:%Y-%m-%d %H:%M} via "
                               f"{first.transport} ({first.location}); use --resend to send again",
                               first.location)

    now = datetime.now(LOCAL_TZ).replace(tzinfo=None)
    attempt_no = len(history) + 1
    transport, location, recipients = "outbox", None, ()
    try:
        config = SmtpConfig.from_env(env)
        if config is not None:
            transport, location, recipients = "smtp", f"{config.host}:{config.port}", config.recipients
        else:
            recipients = tuple(parse_recipients((env or {}).get("CSWH_SMTP_TO")))
        sender = config.sender if config else ((env or {}).get("CSWH_SMTP_FROM") or DEFAULT_SENDER)
        msg = build_message(period=period, revision=revision, html=html, text=text, csv_bytes=csv_bytes,
                            csv_filename=csv_filename, sender=sender, recipients=recipients)
        if config is None:
            eml = write_eml(outbox_dir, f"kpi-{period}-{attempt_no:03d}.eml", msg)
            location, detail, refused = str(eml), f"no CSWH_SMTP_HOST: written to {eml}", {}
        else:
            refused = send_smtp(config, msg)
            detail = f"sent to {len(recipients) - len(refused)} recipient(s) via {location}"
        if refused:
            detail += f"; refused by the server: {', '.join(sorted(refused))}"
        outcome = DeliveryOutcome("delivered", transport, detail, location)
        message_id = msg["Message-ID"]
        subject = msg["Subject"]
    except (OSError, smtplib.SMTPException, SmtpConfigError) as exc:
        # OSError covers refused connections, timeouts and TLS errors; the password is never shown.
        where = f" to {location}" if location else ""
        detail = f"delivery{where} failed: {type(exc).__name__}: {exc}. The snapshot is saved; " \
                 "the next run retries."
        outcome = DeliveryOutcome("failed", transport, detail, location)
        message_id, subject = None, subject_for(period, revision)

    with connect_work_db(work_db) as con:
        record_attempt(con, Attempt(period, attempt_no, revision, now,
                                    DELIVERED if outcome.ok else FAILED, transport,
                                    ", ".join(recipients), subject, message_id, location,
                                    outcome.detail, resend))
    return outcome
