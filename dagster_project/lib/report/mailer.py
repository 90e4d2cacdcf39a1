"""E-mail the monthly reports, once per period and audience, with a ledger of every attempt.

Configuration comes from the environment only (secrets never live in files), through
``Settings.smtp`` (the CSWH_SMTP_* variables ``settings.py`` read):
``CSWH_SMTP_HOST``, ``CSWH_SMTP_PORT`` (default 587 with STARTTLS, else 25), ``CSWH_SMTP_USER``,
``CSWH_SMTP_PASSWORD``, ``CSWH_SMTP_FROM``, ``CSWH_SMTP_TO`` (comma-separated, the company report)
and ``CSWH_SMTP_STARTTLS`` (true/false); ``CSWH_SMTP_TO_<BRANCH>`` names the recipients of a
branch's page (``Settings.branch_recipients``). Without ``CSWH_SMTP_HOST`` each recipient's message
is written to the outbox folder as its own ``.eml`` file (with that recipient in ``To:``), and the
outcome says "written to the outbox", never "delivered" (docs/bi.md#the-monthly-e-mail).

Each recipient gets their own message over one SMTP connection, so a refused address does not stop
the others and "delivered to N recipients" counts the addresses the server accepted.

The ledger (``reporting.snapshot_deliveries`` in the work file) records every attempt, per period
and audience (``ALL`` = the company report, a branch code = that branch's page). A period and
audience with a delivered attempt is not sent again unless ``resend``; a failed attempt is recorded
with its reason and the next run tries again. The report files are written before any attempt, so a
delivery failure never loses them. Delivery is at-least-once: a crash between the SMTP server
accepting a message and the ledger row being written means the next run sends it again.
"""

from __future__ import annotations

import base64
import os
import re
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

from dagster_project.lib.report.mail_html import MailBody, file_safe
from dagster_project.settings import connect_work_db

LEDGER_TABLE = "reporting.snapshot_deliveries"
DELIVERED, FAILED = "DELIVERED", "FAILED"
LOCAL_TZ = ZoneInfo("Asia/Shanghai")
SUBJECT_PREFIX = "客服质量月报 Customer-service KPI snapshot"
DEFAULT_SENDER = "cs-warehouse@localhost"
SMTP_TIMEOUT_SECONDS = 30
COMPANY_AUDIENCE = "ALL"  # the company report (head office); a branch page's audience is its branch code


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
    def from_env(cls, env: Mapping[str, str] | None = None, *,
                 require_recipients: bool = True) -> "SmtpConfig | None":
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
        if not recipients and require_recipients:
            raise SmtpConfigError("CSWH_SMTP_HOST is set but CSWH_SMTP_TO names no recipient")
        return cls(host=host, port=port, user=env.get("CSWH_SMTP_USER") or None,
                   password=env.get("CSWH_SMTP_PASSWORD") or None,
                   sender=(env.get("CSWH_SMTP_FROM") or DEFAULT_SENDER).strip(),
                   recipients=recipients, starttls=starttls)


def subject_for(period: str, revision: int = 1, audience: str = COMPANY_AUDIENCE) -> str:
    suffix = f" (修订 revision {revision})" if revision > 1 else ""
    scope = "" if audience == COMPANY_AUDIENCE else f" — {audience}"
    return f"{SUBJECT_PREFIX}{scope} {period}{suffix}"


@dataclass(frozen=True)
class Attachment:
    filename: str
    data: bytes
    maintype: str
    subtype: str


@dataclass(frozen=True)
class MailContent:
    """Everything one report e-mail carries: the strict HTML body and the PNG charts it references
    by Content-ID (``mail_html.MailBody``), the text part, and the attachments."""

    subject: str
    body: MailBody
    text: str
    attachments: tuple[Attachment, ...] = ()


def build_message(content: MailContent, *, sender: str, recipient: str | None, idstring: str) -> EmailMessage:
    """multipart/mixed: [multipart/alternative: [text/plain, multipart/related: [text/html, image/png...]],
    attachments...] — the structure every mail client shows as "body with inline charts, plus files".

    One message per recipient, with that recipient in ``To:`` (never ``undisclosed-recipients``);
    without any configured recipient the message has no ``To:`` at all, and says so in the outbox."""
    msg = EmailMessage()
    msg["Subject"] = content.subject
    msg["From"] = sender
    if recipient:
        msg["To"] = recipient
    msg["Date"] = formatdate(localtime=True)
    # An explicit domain: the default asks DNS for this host's FQDN, which may hang offline.
    msg["Message-ID"] = make_msgid(idstring=idstring, domain="cs-warehouse.local")
    msg.set_content(content.text)
    msg.add_alternative(content.body.html, subtype="html")
    html_part = msg.get_payload()[1]
    for image in content.body.images:
        # add_related turns the html part into multipart/related; the cid is in angle brackets there
        html_part.add_related(image.chart.png, maintype="image", subtype="png", cid=f"<{image.content_id}>",
                              filename=image.chart.filename, disposition="inline")
    for attachment in content.attachments:
        # text attachments are UTF-8 (Chinese labels): say so, or clients guess a local code page
        params = {"charset": "utf-8"} if attachment.maintype == "text" else {}
        msg.add_attachment(attachment.data, maintype=attachment.maintype, subtype=attachment.subtype,
                           filename=attachment.filename, params=params)
    return msg


def _smtp_connection(config: SmtpConfig) -> smtplib.SMTP:
    # local_hostname given: smtplib would otherwise resolve this host's FQDN through DNS.
    smtp = smtplib.SMTP(config.host, config.port, timeout=SMTP_TIMEOUT_SECONDS,
                        local_hostname=socket.gethostname() or "localhost")
    try:
        if config.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if config.user:
            login_utf8(smtp, config.user, config.password or "")
    except BaseException:
        smtp.close()
        raise
    return smtp


def send_smtp(config: SmtpConfig, messages: list[tuple[str, EmailMessage]]) -> tuple[list[str], dict[str, str]]:
    """Send each (recipient, message) over one connection; (accepted, refused: recipient -> reply).

    A recipient counts as accepted only once the server answered 250 to its message's DATA; a
    refused recipient (550 ...) is reported and the others still go out. A lost connection raises:
    nothing after it was accepted."""
    accepted: list[str] = []
    refused: dict[str, str] = {}
    with _smtp_connection(config) as smtp:
        for recipient, msg in messages:
            try:
                rejected = smtp.send_message(msg, from_addr=config.sender, to_addrs=[recipient])
            except smtplib.SMTPRecipientsRefused as exc:
                code, reply = exc.recipients.get(recipient, (0, b""))
                refused[recipient] = f"{code} {reply.decode('utf-8', 'replace') if isinstance(reply, bytes) else reply}"
                smtp.rset()
                continue
            if recipient in rejected:
                code, reply = rejected[recipient]
                refused[recipient] = f"{code} {reply.decode('utf-8', 'replace')}"
            else:
                accepted.append(recipient)
    return accepted, refused


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


def _address_slug(address: str) -> str:
    """A file-name-safe form of an address: one outbox file per recipient, named after them."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", address.replace("@", "_at_"))[:80]


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
            audience VARCHAR DEFAULT 'ALL',
            PRIMARY KEY (period, attempt)
        )""")
    # A ledger written before the branch reports has no audience column: its rows are the company's.
    con.execute(f"ALTER TABLE {LEDGER_TABLE} ADD COLUMN IF NOT EXISTS audience VARCHAR DEFAULT 'ALL'")


@dataclass(frozen=True)
class Attempt:
    period: str
    attempt: int  # 1, 2, ... per period, over all audiences (the table's key)
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
    audience: str = COMPANY_AUDIENCE  # ALL = the company report; a branch code = that branch's page


_ATTEMPT_COLUMNS = ("period, attempt, revision, attempted_at, status, transport, recipients, subject, "
                    "message_id, location, detail, resend, audience")


def attempts(con: duckdb.DuckDBPyConnection, period: str, audience: str = COMPANY_AUDIENCE) -> list[Attempt]:
    ensure_ledger(con)
    rows = con.execute(f"SELECT {_ATTEMPT_COLUMNS} FROM {LEDGER_TABLE} WHERE period = ? "
                       "AND coalesce(audience, 'ALL') = ? ORDER BY attempt", [period, audience]).fetchall()
    return [Attempt(*row) for row in rows]


def _next_attempt(con: duckdb.DuckDBPyConnection, period: str) -> int:
    return int(con.execute(f"SELECT coalesce(max(attempt), 0) + 1 FROM {LEDGER_TABLE} WHERE period = ?",
                           [period]).fetchone()[0])


def record_attempt(con: duckdb.DuckDBPyConnection, attempt: Attempt) -> None:
    ensure_ledger(con)
    con.execute(f"INSERT INTO {LEDGER_TABLE} ({_ATTEMPT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [attempt.period, attempt.attempt, attempt.revision, attempt.attempted_at, attempt.status,
                 attempt.transport, attempt.recipients, attempt.subject, attempt.message_id,
                 attempt.location, attempt.detail, attempt.resend, attempt.audience])


def should_send(history: list[Attempt], resend: bool) -> bool:
    """Send unless a previous attempt for the period was delivered (failures are retried)."""
    return resend or not any(a.status == DELIVERED for a in history)


# DeliveryOutcome.status values: what the CLI and the asset metadata say, word for word
SENT, OUTBOX, ALREADY, FAILED_STATUS = "delivered", "written to the outbox", "already sent", "failed"


@dataclass(frozen=True)
class DeliveryOutcome:
    status: str  # SENT (the SMTP server accepted it) | OUTBOX | ALREADY | FAILED_STATUS
    transport: str | None  # "smtp" | "outbox"
    detail: str  # starts with "delivered to N recipients", "written to the outbox (N files)", ...
    location: str | None = None  # outbox folder or host:port
    recipients: tuple[str, ...] = ()  # accepted by the server, or addressed in the outbox files
    files: tuple[str, ...] = ()  # the outbox .eml files

    @property
    def ok(self) -> bool:
        return self.status != FAILED_STATUS


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def transmit(config: SmtpConfig | None, messages: list[tuple[str | None, EmailMessage]], outbox_dir: Path,
             file_stem: str, audience: str) -> tuple[str, str, tuple[str, ...], tuple[str, ...]]:
    """Hand ``(recipient, message)`` pairs to the SMTP server of ``config``, or without one write
    one ``<file_stem>-<recipient>.eml`` per recipient to the outbox. Returns (status: SENT or
    OUTBOX, detail, recipients delivered to or written for, outbox files); raises when nothing
    could be delivered. "delivered to N recipients" counts only what the server accepted."""
    recipients = tuple(r for r, _ in messages if r)
    if config is None:
        files = tuple(str(write_eml(outbox_dir, f"{file_stem}{'-' + _address_slug(r) if r else ''}.eml", msg))
                      for r, msg in messages)
        detail = f"written to the outbox ({_plural(len(files), 'file')}) in {outbox_dir}: no CSWH_SMTP_HOST"
        if not recipients:
            detail += "; no recipient is configured, so the file has no To: line"
        return OUTBOX, detail, recipients, files
    if not recipients:
        raise SmtpConfigError(f"CSWH_SMTP_HOST is set but no recipient is configured for {audience} "
                              "(CSWH_SMTP_TO, or CSWH_SMTP_TO_<BRANCH> for a branch)")
    accepted, refused = send_smtp(config, messages)
    if not accepted:
        raise smtplib.SMTPRecipientsRefused({r: (0, reply) for r, reply in refused.items()})
    detail = f"delivered to {_plural(len(accepted), 'recipient')} via {config.host}:{config.port}"
    if refused:
        detail += "; refused by the server: " + ", ".join(f"{r} ({reply})" for r, reply in sorted(refused.items()))
    return SENT, detail, tuple(accepted), ()


def deliver(work_db: Path, outbox_dir: Path, *, period: str, revision: int, content: MailContent,
            recipients: tuple[str, ...] | list[str], audience: str = COMPANY_AUDIENCE, resend: bool = False,
            env: Mapping[str, str] | None = None) -> DeliveryOutcome:
    """Send (or write to the outbox) one report to its recipients unless it was delivered before.

    ``recipients`` are the audience's (``CSWH_SMTP_TO`` for the company report,
    ``Settings.branch_recipients`` for a branch page); ``env`` is ``Settings.smtp`` (host, port,
    credentials, sender). The outcome says "delivered to N recipients" only for recipients the
    SMTP server accepted, and "written to the outbox (N files)" when there is no server."""
    with connect_work_db(work_db) as con:
        history = attempts(con, period, audience)
    if not should_send(history, resend):
        first = next(a for a in history if a.status == DELIVERED)
        return DeliveryOutcome(ALREADY, first.transport,
                               f"already sent on {first.attempted_at:%Y-%m-%d %H:%M} via {first.transport} "
                               f"({first.location}); use --resend to send again", first.location)

    now = datetime.now(LOCAL_TZ).replace(tzinfo=None)
    recipients = tuple(dict.fromkeys(r.strip() for r in recipients if r.strip()))
    transport, location = "outbox", str(outbox_dir)
    message_ids: list[str] = []
    stem = f"kpi-{period}" + ("" if audience == COMPANY_AUDIENCE else f"-{file_safe(audience)}")
    with connect_work_db(work_db) as con:
        ensure_ledger(con)
        attempt_no = _next_attempt(con, period)
    try:
        config = SmtpConfig.from_env(env, require_recipients=False)
        sender = config.sender if config else ((env or {}).get("CSWH_SMTP_FROM") or DEFAULT_SENDER).strip()
        messages = [(r, build_message(content, sender=sender, recipient=r,
                                      idstring=f"{stem}-r{revision}-{attempt_no}-{i}"))
                    for i, r in enumerate(recipients or (None,))]
        message_ids = [m["Message-ID"] for _, m in messages]
        if config is not None:
            transport, location = "smtp", f"{config.host}:{config.port}"
        status, detail, sent_to, files = transmit(config, messages, outbox_dir, f"{stem}-{attempt_no:03d}",
                                                  audience)
        outcome = DeliveryOutcome(status, transport, detail, location, sent_to, files)
    except (OSError, smtplib.SMTPException, SmtpConfigError) as exc:
        # OSError covers refused connections, timeouts and TLS errors; the password is never shown.
        where = f" to {location}" if transport == "smtp" else ""
        detail = f"failed: delivery{where}: {type(exc).__name__}: {exc}. The report is saved; the next run retries."
        outcome = DeliveryOutcome(FAILED_STATUS, transport, detail, location)
        message_ids = []

    with connect_work_db(work_db) as con:
        record_attempt(con, Attempt(period, attempt_no, revision, now,
                                    DELIVERED if outcome.ok else FAILED, transport,
                                    ", ".join(outcome.recipients if outcome.ok else recipients), content.subject,
                                    " ".join(message_ids) or None, location, outcome.detail, resend, audience))
    return outcome
