"""The worker's mail tasks: `mail.send` (one message, straight from its arguments) and
`mail.send_queued` (one message of the queue, sent effectively once: see privacy.mail)."""

from __future__ import annotations

import logging
import smtplib
from dataclasses import asdict
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime

from celery import Task
from celery import shared_task
from sqlalchemy import delete
from sqlalchemy.exc import OperationalError

from privacy import mail
from privacy import outbound
from privacy.database import begin_write
from privacy.extensions import db

logger = logging.getLogger(__name__)


@shared_task(
    name="mail.send",
    autoretry_for=mail.RETRY_ON,
    retry_backoff=True,
    max_retries=5,
    acks_late=True,
)
def send_task(to: str | list[str], subject: str, text: str, html: str | None = None) -> str:
    """mail.send() from a worker; retried with backoff only when the connection fails."""
    return mail.send(to, subject, text, html)


@dataclass(frozen=True)
class _Claimed:
    message: mail.Message
    message_id: str
    attempt: int


def _claim(mail_id: int) -> _Claimed | str:
    """In a write transaction: the message to send, its try counted; or why not ("gone",
    "sent", "failed", "nothing to send")."""
    queued = db.session.get(mail.QueuedMail, mail_id)
    if queued is None:
        return "gone"
    if queued.state != mail.PENDING:
        return queued.state
    try:
        data = mail.load_payload(queued)
        if "compose" in data:
            message = mail.compose(data["compose"], data["data"])
            if message is None:
                db.session.delete(queued)
                return "nothing to send"
            mail.store_payload(queued, asdict(message))
        else:
            message = mail.Message(**data)
    except OperationalError:
        raise  # a busy database: the task runs again
    except Exception as exc:  # unreadable payload, a composer's failure: final, but kept
        db.session.rollback()
        begin_write()
        queued = db.session.get(mail.QueuedMail, mail_id)
        if queued is None:
            return "gone"
        queued.attempts += 1
        _failed(queued, _error_text(exc), final=True)
        _log_failure(mail_id, _error_text(exc), queued.attempts, final=True)
        return mail.FAILED
    queued.attempts += 1
    return _Claimed(message, mail.message_id_of(queued), queued.attempts)


def _record_sent(mail_id: int) -> None:
    now = datetime.now(UTC)
    queued = db.session.get(mail.QueuedMail, mail_id)
    if queued is not None:
        queued.state, queued.sent_at, queued.last_error = mail.SENT, now, None
        queued.payload_ct = b""  # nothing personal stays once it went out
    db.session.execute(
        delete(mail.QueuedMail)
        .where(mail.QueuedMail.state == mail.SENT, mail.QueuedMail.sent_at < now - mail.SENT_KEPT)
        .execution_options(synchronize_session=False)
    )


def _failed(queued: mail.QueuedMail | None, error: str, *, final: bool) -> None:
    if queued is not None:
        queued.last_error = error[:200]
        if final:
            queued.state = mail.FAILED


def _log_failure(mail_id: int, error: str, attempt: int, *, final: bool) -> None:
    if final:
        logger.error(
            "queued mail %s failed for good (%s, attempt %s); kept, see `flask mail failed`",
            mail_id,
            error,
            attempt,
        )
    else:
        logger.warning(
            "queued mail %s not sent (%s, attempt %s); trying again", mail_id, error, attempt
        )


def _error_text(exc: BaseException) -> str:
    """The error's class and SMTP codes: never its message, which can name a recipient."""
    name = type(exc).__name__
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = sorted({str(code) for code, _reply in exc.recipients.values()})
        return f"{name} {','.join(codes)}".strip()[:200]
    code = getattr(exc, "smtp_code", None)
    return f"{name} {code}" if code else name


@shared_task(name="mail.send_queued", bind=True, max_retries=None, acks_late=True)
def send_queued(self: Task, mail_id: int) -> str:
    """Send a queued message once; returns its Message-ID, or why nothing was sent.

    The try is claimed (counted, its Message-ID fixed by the row) and committed before the
    message goes out; afterwards the message is marked sent, or its error recorded, in a
    write transaction retried in place (outbound.record_in_place), so a busy database never
    sends it twice. A message already sent or failed is skipped. A connection failure or a
    4xx answer is tried again, with pauses doubling from RETRY_BASE_SECONDS, up to
    MAX_ATTEMPTS tries; anything else fails for good, and the message is kept.
    """
    begin_write()
    claimed = _claim(mail_id)
    db.session.commit()
    if isinstance(claimed, str):
        return claimed
    message = claimed.message
    try:
        mail.send(
            message.to,
            message.subject,
            message.text,
            message.html,
            message_id=claimed.message_id,
        )
    except Exception as exc:
        error = _error_text(exc)
        final = claimed.attempt >= mail.MAX_ATTEMPTS or not mail.is_transient(exc)
        outbound.record_in_place(
            lambda: _failed(db.session.get(mail.QueuedMail, mail_id), error, final=final)
        )
        _log_failure(mail_id, error, claimed.attempt, final=final)
        if final:
            return mail.FAILED
        pause = mail.RETRY_BASE_SECONDS * 2 ** (claimed.attempt - 1)
        raise self.retry(countdown=min(mail.RETRY_MAX_SECONDS, pause)) from None
    outbound.record_in_place(lambda: _record_sent(mail_id))
    return claimed.message_id
