"""Customers' webhooks for sub-processor change notices: one URL per account with its own
secret, and the signed POST of every list version announced to the account.

Each delivery carries `X-Privacy-Timestamp` (Unix seconds) and `X-Privacy-Signature:
sha256=<hex>`, the HMAC-SHA256 with the account's secret over `<timestamp>.<raw body>`, so a
receiver can refuse an old or replayed body, and `Idempotency-Key`, the same on every try of
one notice, so a receiver can drop a repeat. The secret is shown once (when set or rotated)
and stored encrypted with the data keys. Delivery goes through privacy.outbound like the OpenDSR
callbacks (no redirects, timeouts, no proxy variables, public addresses only in production,
tries counted on the Notice row, which keeps the state of each delivery).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from urllib.parse import urlsplit

from celery import Task
from cryptography.exceptions import InvalidTag
from flask import current_app

from privacy import addresses
from privacy import jobs
from privacy import outbound
from privacy.accounts.models import Account
from privacy.audit import services as audit
from privacy.crypto import KeyRingError
from privacy.database import for_account
from privacy.database import utcnow
from privacy.errors import NotFound
from privacy.errors import ValidationFailed
from privacy.extensions import db
from privacy.processors.models import ListVersion
from privacy.processors.models import Notice
from privacy.processors.models import Webhook

logger = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Privacy-Signature"
TIMESTAMP_HEADER = "X-Privacy-Timestamp"
EVENT = "subprocessors.list_changed"
USER_AGENT = "privacy-subprocessor-webhooks/1"
MAX_URL = 2000
# Notice.webhook_state: None when the account had no webhook when the notice went out.
PENDING, DELIVERED, FAILED, CANCELLED = "pending", "delivered", "failed", "cancelled"


class SecretUnreadable(Exception):
    """The webhook's secret cannot be decrypted with the current key ring. Final."""


# -- configuration -----------------------------------------------------------------------


def _new_secret(webhook: Webhook) -> str:
    secret = "whsec_" + secrets.token_urlsafe(32)
    webhook.seal_secret(secret)
    return secret


def check_url(url) -> str:
    """An http(s) URL with a host and no credentials (https and a public host in production);
    raises ValidationFailed otherwise."""
    message = None
    url = url.strip() if isinstance(url, str) else url
    if not isinstance(url, str) or not url:
        message = "Give the URL to POST notices to."
    elif len(url) > MAX_URL:
        message = f"At most {MAX_URL} characters."
    else:
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except ValueError:
            parts, host = None, None
        allowed = ("https",) if current_app.config.get("PRODUCTION") else ("https", "http")
        if parts is None or parts.scheme not in allowed or not host:
            message = f"An absolute {' or '.join(allowed)} URL."
        elif parts.username is not None or parts.password is not None:
            message = "No credentials in the URL: deliveries are signed with the secret."
        elif addresses.refused_url(url):
            message = "The host must be a public address."
    if message:
        raise ValidationFailed(errors={"url": [message]})
    return url


def get(account: Account) -> Webhook | None:
    return db.session.scalar(for_account(Webhook, account))


def configure(account: Account, *, url: str, actor: str) -> tuple[Webhook, str | None]:
    """Set the account's webhook URL. A new webhook gets a secret, returned here only (the
    caller shows it once); changing the URL of an existing one keeps its secret (None)."""
    url = check_url(url)
    webhook = get(account)
    secret = None
    if webhook is None:
        webhook = Webhook(account_id=account.id, account=account, url=url, created_at=utcnow())
        secret = _new_secret(webhook)
        db.session.add(webhook)
        action = "subprocessor.webhook_created"
    else:
        webhook.url = url
        action = "subprocessor.webhook_changed"
    db.session.flush()
    audit.record(account, action=action, object_type="subprocessor_webhook", actor=actor)
    return webhook, secret


def rotate(account: Account, *, actor: str) -> tuple[Webhook, str]:
    """A new secret at once (the old one stops signing); NotFound without a webhook."""
    webhook = get(account)
    if webhook is None:
        raise NotFound("No webhook is configured.")
    secret = _new_secret(webhook)
    db.session.flush()
    audit.record(
        account,
        action="subprocessor.webhook_rotated",
        object_type="subprocessor_webhook",
        actor=actor,
    )
    return webhook, secret


def delete(account: Account, *, actor: str) -> None:
    """Remove the webhook; deliveries still pending end as cancelled when they run."""
    webhook = get(account)
    if webhook is None:
        raise NotFound("No webhook is configured.")
    db.session.delete(webhook)
    db.session.flush()
    audit.record(
        account,
        action="subprocessor.webhook_deleted",
        object_type="subprocessor_webhook",
        actor=actor,
    )


# -- signatures --------------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256(secret, b"<timestamp>." + body)."""
    material = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), material, hashlib.sha256).hexdigest()


def headers(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
    }


def verify(
    secret: str,
    body: bytes,
    timestamp: str,
    signature: str,
    *,
    tolerance: int = 300,
    now: float | None = None,
) -> bool:
    """What a receiver checks: the signature, and a timestamp at most `tolerance` seconds
    away from `now` (a replayed delivery fails)."""
    try:
        stamp = int(timestamp)
    except (TypeError, ValueError):
        return False
    now = time.time() if now is None else now
    if abs(now - stamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, stamp, body), signature or "")


# -- delivery ----------------------------------------------------------------------------


def body_for(version: ListVersion) -> dict:
    """The POSTed JSON: the list version and its frozen notice."""
    return {
        "event": EVENT,
        "list_version": version.number,
        "change": version.change,
        "announced_at": version.announced_at.isoformat(),
        "effective_at": version.effective_at.isoformat(),
        "notice": version.notice,
    }


def idempotency_key(notice: Notice) -> str:
    """The `Idempotency-Key` of every try of one notice's delivery: unlike the timestamp and
    the signature, it does not change between tries, so a receiver drops a repeat."""
    return outbound.idempotency_key(Notice.__tablename__, notice.id, notice.notified_at)


def queue(account: Account, notice: Notice) -> bool:
    """Mark `notice` for delivery and enqueue it after the commit, if the account has a
    webhook; False otherwise."""
    if get(account) is None:
        return False
    notice.webhook_state = PENDING
    notice.webhook_attempts = 0
    db.session.flush()
    jobs.after_commit("processors.deliver_webhook", notice.id)
    return True


def _signing_secret(webhook: Webhook) -> str:
    try:
        return webhook.unseal_secret()
    except (KeyRingError, InvalidTag):
        # Its data key left the key ring: no retry can sign; the admin rotates the secret.
        raise SecretUnreadable("secret unreadable: rotate it") from None


def deliver(task: Task, notice_id: int) -> str:
    """Run by the task `processors.deliver_webhook`: POST one try of a notice to the
    account's webhook unless it is no longer pending (a delivered one is never sent again);
    see privacy.outbound.deliver for how tries are counted, retried and recorded. A failure
    keeps only the status code or the error's class; a secret that cannot be decrypted
    fails at once, and a webhook removed meanwhile makes it "cancelled"."""

    def claim() -> outbound.Outgoing | str:
        notice = db.session.get(Notice, notice_id)
        if notice is None:
            return "gone"
        if notice.webhook_state != PENDING:
            return notice.webhook_state or "none"
        account = db.session.get(Account, notice.account_id)
        webhook = get(account)
        if webhook is None:
            notice.webhook_state = CANCELLED
            return CANCELLED
        notice.webhook_attempts += 1
        body = json.dumps(body_for(notice.list_version), ensure_ascii=False).encode()
        try:
            # A fresh timestamp on every try: receivers may refuse old ones.
            signed = headers(_signing_secret(webhook), body)
        except SecretUnreadable as exc:
            _record_on(notice, outbound.Outcome(notice.webhook_attempts, False, str(exc), True))
            return FAILED
        signed[outbound.IDEMPOTENCY_HEADER] = idempotency_key(notice)
        return outbound.Outgoing(webhook.url, body, signed, notice.webhook_attempts)

    def record(outcome: outbound.Outcome) -> None:
        notice = db.session.get(Notice, notice_id)
        if notice is not None:  # the account was deleted meanwhile
            _record_on(notice, outcome)

    return outbound.deliver(task, claim=claim, record=record)


def _record_on(notice: Notice, outcome: outbound.Outcome) -> None:
    notice.webhook_state = outcome.state
    notice.webhook_error = outcome.error
    if not outcome.delivered:
        logger.warning(
            "webhook for notice %s (account id %s) failed (%s, attempt %s%s)",
            notice.id,
            notice.account_id,
            outcome.error,
            outcome.attempt,
            ", giving up" if outcome.final else "",
        )
