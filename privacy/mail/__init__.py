"""Outgoing mail: SMTP when SMTP_URL is set, otherwise .eml files in the outbox folder; the
queue of messages the worker sends (each effectively once), and the limits on mail that
people's actions send.

A queued message is claimed in a committed transaction before it goes out (its try counted,
its Message-ID fixed by its row) and marked sent in a write transaction retried in place, so
a busy database never makes the worker send it twice; a message the worker meets again
once it is sent is skipped. A message whose sending could not be recorded at all goes out
again under the same Message-ID, the key mail systems recognise a repeat by. A message that
fails for good (a refused recipient or sender, an address that cannot be read) is kept,
logged by its id and listed by `flask mail failed`.

The worker's tasks are in privacy.mail.tasks (found by Celery's autodiscovery), the
`flask mail` commands in privacy.mail.cli.
"""

from __future__ import annotations

import contextlib
import email
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import os
import re
import secrets
import smtplib
import ssl
import tempfile
import time
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import asdict
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
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

from flask import current_app
from flask import render_template
from jinja2 import TemplateNotFound
from limits import parse as parse_limit
from sqlalchemy import CheckConstraint
from sqlalchemy import Integer
from sqlalchemy import LargeBinary
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from privacy import files
from privacy import jobs
from privacy import outbound
from privacy.database import UTCDateTime
from privacy.errors import TooManyRequests
from privacy.extensions import db
from privacy.extensions import limiter
from privacy.validation import email_key

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


# Control characters (C0, DEL, C1) and the Unicode line and paragraph separators: none may
# stand in a header, where CR and LF would end it.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def header_text(value: str) -> str:
    """`value` fit for a header: every control character folded to a space. A name typed with
    a line break (a sub-processor's, an account's) must not cost the message it appears in."""
    return _CONTROL.sub(" ", value)


def send(
    to: str | list[str],
    subject: str,
    text: str,
    html: str | None = None,
    *,
    attachments: Iterable[Attachment | tuple] | None = None,
    message_id: str | None = None,
) -> str:
    """Send one message to `to` (addresses, optionally with display names); return its Message-ID
    (`message_id` when given: the queue's, the same on every try of one message).

    Delivers over SMTP when SMTP_URL is configured, else writes an .eml file into OUTBOX_PATH.
    Control characters in the subject, display names and file names become spaces
    (header_text). Raises ValueError for malformed addresses, smtplib/OS errors on delivery.
    """
    config = current_app.config
    recipients = [header_text(r) for r in ([to] if isinstance(to, str) else list(to))]
    subject = header_text(subject)
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
    message_id = message_id or make_msgid(domain=sender.rpartition("@")[2])
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
            filename=header_text(attachment.filename),
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


# -- the queue the worker sends --------------------------------------------------------------

PENDING, SENT, FAILED = "pending", "sent", "failed"
# Tries of one queued message while the connection fails or the server answers 4xx. The
# pauses double from RETRY_BASE_SECONDS and stay below the broker's visibility timeout (an
# hour on Redis), past which a waiting message would be handed to a second worker as well.
MAX_ATTEMPTS = 8
RETRY_BASE_SECONDS = 15
RETRY_MAX_SECONDS = 600
# A sent message's row (emptied of its payload at once) is deleted this long after.
SENT_KEPT = timedelta(days=1)


@dataclass(frozen=True)
class Message:
    """One message to queue: what send() takes, without attachments."""

    to: str | list[str]
    subject: str
    text: str
    html: str | None = None


class QueuedMail(db.Model):
    """A message waiting for the worker, encrypted: the broker and the task logs only ever
    see its id, never the recipient, the text or the links in it. `attempts` counts its
    tries; a sent message keeps its row, without the payload, for SENT_KEPT; a message that
    failed for good keeps its payload until an operator sends it again or discards it
    (`flask mail retry` / `flask mail discard`).
    """

    __tablename__ = "queued_mail"
    __table_args__ = (CheckConstraint("state IN ('pending', 'sent', 'failed')", name="state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    payload_ct: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    key_id: Mapped[str] = mapped_column(String(32), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    state: Mapped[str] = mapped_column(
        String(16), nullable=False, default=PENDING, server_default=PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)


def _queued_aad(mail_id: int) -> bytes:
    return f"queued_mail:{mail_id}".encode()


def store_payload(queued: QueuedMail, payload: dict) -> None:
    """Encrypt `payload` into the row under the current key, bound to the row's id."""
    ring = current_app.extensions["keyring"]
    queued.payload_ct = ring.encrypt(json.dumps(payload), _queued_aad(queued.id))
    queued.key_id = ring.current_id


def load_payload(queued: QueuedMail) -> dict:
    """The payload of a queued message (a Message's fields, or a composer's name and data)."""
    ring = current_app.extensions["keyring"]
    return json.loads(ring.decrypt(queued.payload_ct, queued.key_id, _queued_aad(queued.id)))


def _queue(payload: dict) -> None:
    queued = QueuedMail(
        payload_ct=b"",
        key_id=current_app.extensions["keyring"].current_id,
        created_at=datetime.now(UTC),
    )
    db.session.add(queued)
    db.session.flush()
    store_payload(queued, payload)
    jobs.after_commit("mail.send_queued", queued.id)


def send_after_commit(to: str | list[str], subject: str, text: str, html: str | None = None):
    """Queue the message for the worker once the current transaction commits (it is dropped
    with a rollback). Services call this instead of sending: a link in a mail must not point
    at a row that was rolled back, and the request must not wait for SMTP."""
    _queue(asdict(Message(to, subject, text, html)))


# Functions that write a queued message in the worker (compose_after_commit), by name.
_COMPOSERS: dict[str, Callable[..., Message | None]] = {}


def composer(name: str):
    """Register the decorated function as composer `name`: called in the worker with the
    keyword data given to compose_after_commit, inside the transaction that claims the
    message (rows it adds are committed before the message goes out), it returns the
    Message to send, or None for nothing."""

    def register(function: Callable[..., Message | None]):
        _COMPOSERS[name] = function
        return function

    return register


def compose_after_commit(name: str, **data) -> None:
    """Queue a message that composer `name` writes in the worker, once the current
    transaction commits. The request does the same work whatever the message will be, or
    whether there will be one: `data` (JSON values) is stored encrypted like a message."""
    if name not in _COMPOSERS:
        raise KeyError(f"no mail composer {name!r}")
    _queue({"compose": name, "data": data})


def compose(name: str, data: dict) -> Message | None:
    """Run composer `name` on `data` (in the worker, in the transaction claiming the message)."""
    return _COMPOSERS[name](**data)


def message_id_of(queued: QueuedMail) -> str:
    """The Message-ID of a queued message: derived from its row, so every try of one message
    carries the same one and a repeat is recognisable as such."""
    domain = parseaddr(current_app.config["MAIL_FROM"])[1].rpartition("@")[2] or "localhost"
    key = outbound.idempotency_key(QueuedMail.__tablename__, queued.id, queued.created_at)
    return f"<{key}@{domain}>"


def is_transient(exc: BaseException) -> bool:
    """Whether trying again later may deliver: the connection failed, or the server answered
    4xx (every recipient's refusal included). A 5xx answer, a certificate the server fails
    and a message that cannot be built are final."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _reply in exc.recipients.values()]
        return bool(codes) and all(400 <= code < 500 for code in codes)
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    if isinstance(exc, RETRY_ON):
        return True
    if isinstance(exc, smtplib.SMTPException | ssl.SSLError):
        return False
    return isinstance(exc, OSError)


# -- limits on mail that people's actions send -------------------------------------------


def recipient_key(address: str) -> str:
    """A keyed hash of an address (whatever its case), for rate-limit counters: their
    storage sees neither the address nor a hash anyone could recompute from a list."""
    secret = str(current_app.config["SECRET_KEY"]).encode()
    material = b"mail-recipient:" + email_key(address.strip()).encode()
    return hmac.new(secret, material, hashlib.sha256).hexdigest()


def limit(action: str, *, recipient: str, account=None, what: str = "e-mails") -> None:
    """Count one mail that a person's `action` sends (an invitation, a confirmation link):
    at most MAIL_RECIPIENT_RATE_LIMIT of that action to one address, whoever asks, and
    MAIL_ACCOUNT_RATE_LIMIT of it for one account. Call it before anything is written.

    Raises TooManyRequests (429 with Retry-After; `what` names the mail in its message)
    once either is used up. The counters live in the rate limiter's storage
    (RATELIMIT_STORAGE_URI), which every process shares in production.
    """
    if not limiter.enabled:
        return
    config = current_app.config
    checks = [
        (
            config["MAIL_RECIPIENT_RATE_LIMIT"],
            ("mail", action, "recipient", recipient_key(recipient)),
            f"Too many {what} were sent to this address lately",
        )
    ]
    if account is not None:
        checks.append(
            (
                config["MAIL_ACCOUNT_RATE_LIMIT"],
                ("mail", action, "account", str(account.public_id)),
                f"Too many {what} were sent from this account lately",
            )
        )
    strategy = limiter.limiter
    for setting, key, message in checks:
        item = parse_limit(setting)
        if not strategy.hit(item, *key):
            reset_at = strategy.get_window_stats(item, *key).reset_time
            wait = max(1, math.ceil(reset_at - time.time()))
            raise TooManyRequests(
                f"{message}; try again in {_duration(wait)}.",
                headers={"Retry-After": str(wait)},
            )


def _duration(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    return f"{math.ceil(seconds / 60)} minutes"
