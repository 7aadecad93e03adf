"""Outgoing mail: SMTP when SMTP_URL is set, otherwise .eml files in the outbox folder."""

from __future__ import annotations

import contextlib
import email
import ipaddress
import json
import logging
import os
import secrets
import smtplib
import ssl
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from email.utils import getaddresses
from email.utils import make_msgid
from email.utils import parseaddr
from pathlib import Path
from typing import NamedTuple
from urllib.parse import parse_qs
from urllib.parse import unquote
from urllib.parse import urlsplit

from celery import shared_task
from flask import current_app
from flask import render_template
from jinja2 import TemplateNotFound
from sqlalchemy import LargeBinary
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from privacy import files
from privacy.database import UTCDateTime
from privacy.extensions import db

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0
# Delivery is retried (with backoff) only when the connection fails, never on a refusal.
RETRY_ON = (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, ConnectionError, TimeoutError)
_TRUE = {"1", "true", "yes", "on"}


class Attachment(NamedTuple):
    filename: str
    content: bytes
    content_type: str = "application/octet-stream"


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to deliver, parsed from SMTP_URL (see smtp_settings())."""

    host: str
    port: int
    implicit_tls: bool = False
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = DEFAULT_TIMEOUT


def smtp_settings(url: str) -> SmtpSettings:
    """Parse `smtp://[user:pass@]host[:port][?starttls=1&timeout=30]` or `smtps://...`.

    User and password are URL-decoded. Raises ValueError for other schemes and for
    credentials that would cross the network unencrypted (allowed only to a loopback relay).
    """
    parts = urlsplit(url)
    if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
        raise ValueError("SMTP_URL must look like smtp://host:587?starttls=1 or smtps://host:465")
    query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    implicit_tls = parts.scheme == "smtps"
    starttls = not implicit_tls and query.get("starttls", "").lower() in _TRUE
    default_port = 465 if implicit_tls else 587 if starttls else 25
    settings = SmtpSettings(
        host=parts.hostname,
        port=parts.port or default_port,
        implicit_tls=implicit_tls,
        starttls=starttls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        timeout=float(query.get("timeout", DEFAULT_TIMEOUT)),
    )
    if settings.username and not (implicit_tls or starttls) and not _is_loopback(settings.host):
        raise ValueError("SMTP_URL has credentials but no TLS: use smtps:// or ?starttls=1")
    return settings


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def send(
    to: str | list[str],
    subject: str,
    text: str,
    html: str | None = None,
    *,
    attachments: Iterable[Attachment | tuple] | None = None,
) -> str:
    """Send one message to `to` (addresses, optionally with display names); return its Message-ID.

    Delivers over SMTP when SMTP_URL is configured, else writes an .eml file into OUTBOX_PATH.
    Raises ValueError for malformed addresses or header values, smtplib/OS errors on delivery.
    """
    config = current_app.config
    recipients = [to] if isinstance(to, str) else list(to)
    envelope_to = [address for _name, address in getaddresses(recipients)]
    if not envelope_to or any("@" not in address for address in envelope_to):
        raise ValueError("every recipient needs an e-mail address")
    sender = parseaddr(config["MAIL_FROM"])[1]
    if "@" not in sender:
        raise ValueError("MAIL_FROM must be an e-mail address")

    message = EmailMessage()
    message["From"] = config["MAIL_FROM"]
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message_id = make_msgid(domain=sender.rpartition("@")[2])
    message["Message-ID"] = message_id
    message.set_content(text, cte=_transfer_encoding(text))
    if html is not None:
        message.add_alternative(html, subtype="html", cte=_transfer_encoding(html))
    for item in attachments or ():
        attachment = Attachment(*item)
        maintype, _, subtype = attachment.content_type.partition("/")
        message.add_attachment(
            attachment.content,
            maintype=maintype,
            subtype=subtype or "octet-stream",
            filename=attachment.filename,
        )

    if config.get("SMTP_URL"):
        _deliver_smtp(message, sender, envelope_to, smtp_settings(config["SMTP_URL"]))
        logger.info("mail %s sent over SMTP to %d recipient(s)", message_id, len(envelope_to))
    else:
        _write_outbox(message, Path(config["OUTBOX_PATH"]))
        logger.info(
            "mail %s written to the outbox for %d recipient(s)", message_id, len(envelope_to)
        )
    return message_id


# RFC 5322's limit on a line, without its CRLF. Up to it, a text part goes out as it is
# written (7bit, or 8bit when it is not ASCII), so a link stays whole in the raw message;
# quoted-printable would cut long lines with soft breaks, and a link read from the raw .eml
# (or by a mail filter) would be broken.
MAX_LINE = 998


def _transfer_encoding(body: str) -> str:
    lines = body.splitlines()
    if any(len(line.encode()) > MAX_LINE for line in lines):
        return "quoted-printable"
    return "7bit" if body.isascii() else "8bit"


def _deliver_smtp(
    message: EmailMessage, sender: str, recipients: list[str], settings: SmtpSettings
) -> None:
    context = ssl.create_default_context()
    if settings.implicit_tls:
        client = smtplib.SMTP_SSL(
            settings.host, settings.port, timeout=settings.timeout, context=context
        )
    else:
        client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    with client:
        if settings.starttls:
            client.starttls(context=context)
        if settings.username:
            client.login(settings.username, settings.password or "")
        client.ehlo_or_helo_if_needed()
        options = []
        if _has_8bit_part(message):
            if client.has_extn("8bitmime"):
                options.append("BODY=8BITMIME")
            else:  # a server from before 8BITMIME: the parts go out quoted-printable
                message = _as_7bit(message)
        refused = client.send_message(
            message, from_addr=sender, to_addrs=recipients, mail_options=options
        )
    if refused:
        # Others already have it, so a retry would duplicate; report and carry on.
        logger.warning("mail %s refused for %d recipient(s)", message["Message-ID"], len(refused))


def _has_8bit_part(message: EmailMessage) -> bool:
    return any(part.get("Content-Transfer-Encoding") == "8bit" for part in message.walk())


def _as_7bit(message: EmailMessage) -> EmailMessage:
    """A copy whose 8bit text parts are quoted-printable."""
    copy = email.message_from_bytes(message.as_bytes(), _class=EmailMessage, policy=message.policy)
    for part in copy.walk():
        if part.get("Content-Transfer-Encoding") == "8bit":
            text = part.get_content()
            part.set_content(text, subtype=part.get_content_subtype(), cte="quoted-printable")
    return copy


def _write_outbox(message: EmailMessage, folder: Path) -> Path:
    """Write atomically; the UTC timestamp first so `ls` lists the outbox in sending order."""
    files.private_dirs(folder)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    path = folder / f"{stamp}-{secrets.token_hex(4)}.eml"
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(message.as_bytes())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    return path


def render_and_send(to: str | list[str], subject: str, template_base: str, **context) -> str:
    """Render templates/mail/<template_base>.txt (and .html when it exists) and send it."""
    text = render_template(f"mail/{template_base}.txt", **context)
    html_name = f"mail/{template_base}.html"
    try:
        html = render_template(html_name, **context)
    except TemplateNotFound as exc:
        if exc.name != html_name:
            raise
        html = None
    return send(to, subject, text, html)


@shared_task(
    name="mail.send",
    autoretry_for=RETRY_ON,
    retry_backoff=True,
    max_retries=5,
    acks_late=True,
)
def send_task(to: str | list[str], subject: str, text: str, html: str | None = None) -> str:
    """send() from a worker; retried with backoff only when the connection fails."""
    return send(to, subject, text, html)


class QueuedMail(db.Model):
    """A message waiting for the worker, encrypted: the broker and the task logs only ever
    see its id, never the recipient, the text or the links in it."""

    __tablename__ = "queued_mail"

    id: Mapped[int] = mapped_column(primary_key=True)
    payload_ct: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    key_id: Mapped[str] = mapped_column(String(32), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


def _queued_aad(mail_id: int) -> bytes:
    return f"queued_mail:{mail_id}".encode()


def send_after_commit(to: str | list[str], subject: str, text: str, html: str | None = None):
    """Queue the message for the worker once the current transaction commits (it is dropped
    with a rollback). Services call this instead of sending: a link in a mail must not point
    at a row that was rolled back, and the request must not wait for SMTP."""
    from privacy import jobs

    ring = current_app.extensions["keyring"]
    queued = QueuedMail(payload_ct=b"", key_id=ring.current_id, created_at=datetime.now(UTC))
    db.session.add(queued)
    db.session.flush()
    payload = json.dumps({"to": to, "subject": subject, "text": text, "html": html})
    queued.payload_ct = ring.encrypt(payload, _queued_aad(queued.id))
    jobs.after_commit(send_queued, queued.id)


@shared_task(
    name="mail.send_queued",
    autoretry_for=RETRY_ON,
    retry_backoff=True,
    max_retries=5,
    acks_late=True,
)
def send_queued(mail_id: int) -> str:
    """Send a queued message and delete it; a message already sent (and deleted) is skipped."""
    queued = db.session.get(QueuedMail, mail_id)
    if queued is None:
        return "gone"
    ring = current_app.extensions["keyring"]
    data = json.loads(ring.decrypt(queued.payload_ct, queued.key_id, _queued_aad(queued.id)))
    message_id = send(data["to"], data["subject"], data["text"], data["html"])
    db.session.delete(queued)
    db.session.commit()
    return message_id
