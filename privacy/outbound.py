"""Deliveries to customers' endpoints (OpenDSR status callbacks, sub-processor webhooks):
the one way a delivery is tried, counted and recorded. The POST itself goes through the
hardened client of privacy.http_client (no redirects, no proxies, public addresses only in
production: privacy.addresses).

Each try is counted in the delivery's own row before its POST goes out, and its outcome is
recorded after, in transactions of their own: a database that is busy (SQLite's write lock)
delays a try but never uses one up or sends one twice, and the last try always ends in a
recorded final state. Celery's retry count plays no part.

Every try of one delivery carries the same `Idempotency-Key` header (derived from the
delivery's row), and a retried OpenDSR callback the same signed body: the one case where a
try goes out again without being counted as a new one (its POST went out but its outcome
could not be written, even after RECORD_PAUSES, so the task runs again) is a repeat the
receiver can recognise and drop.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from flask import current_app
from sqlalchemy.exc import OperationalError

from privacy.addresses import RefusedDestination
from privacy.database import begin_write
from privacy.extensions import db

logger = logging.getLogger(__name__)
# The first try and eight retries after 2, 4, ... 256 s: about eight and a half minutes.
MAX_ATTEMPTS = 9
IDEMPOTENCY_HEADER = "Idempotency-Key"
# Pauses before recording an outcome again when the database is busy or went away: the POST
# has gone out, so the record is retried here rather than by running the task again.
RECORD_PAUSES = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)


def idempotency_key(table: str, row_id: int, created_at: datetime) -> str:
    """The key of one delivery, as a UUID: the same on every try of it (the row's table, id
    and creation time, keyed with SECRET_KEY so that it reveals no row id), different for
    every other delivery. Sent as `Idempotency-Key`; mail uses it in its Message-ID."""
    stamp = created_at.astimezone(UTC).isoformat()
    material = f"idempotency-key:{table}:{row_id}:{stamp}".encode()
    secret = str(current_app.config["SECRET_KEY"]).encode()
    digest = hmac.new(secret, material, hashlib.sha256).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


@dataclass(frozen=True)
class Outgoing:
    """One counted try, ready to send: `attempt` is its number (1 for the first)."""

    url: str
    body: bytes
    headers: dict[str, str]
    attempt: int


@dataclass(frozen=True)
class Outcome:
    """What a try came to. `error` is a status code or an error's class, never the answer."""

    attempt: int
    delivered: bool
    error: str | None = None
    final: bool = False

    @property
    def state(self) -> str:
        return "delivered" if self.delivered else "failed" if self.final else "pending"


def outcome_of(outgoing: Outgoing) -> Outcome:
    """POST `outgoing` once and say how it went; the last try's failure is final."""
    from privacy import http_client  # the light start: requests loads with the first try

    try:
        http_client.post(outgoing.url, outgoing.body, outgoing.headers)
    except (http_client.DeliveryFailed, RefusedDestination) as exc:
        refused = isinstance(exc, RefusedDestination)
        error = f"refused: {exc}" if refused else str(exc)
        final = refused or outgoing.attempt >= MAX_ATTEMPTS
        return Outcome(outgoing.attempt, False, error[:200], final)
    except (*http_client.NETWORK_ERRORS, SoftTimeLimitExceeded) as exc:
        final = outgoing.attempt >= MAX_ATTEMPTS
        return Outcome(outgoing.attempt, False, type(exc).__name__, final)
    return Outcome(outgoing.attempt, True)


def deliver(
    task: Task,
    *,
    claim: Callable[[], Outgoing | str],
    record: Callable[[Outcome], None],
) -> str:
    """Run one try of a delivery task, with the database transactions around the POST.

    `claim()` runs in a write transaction: it loads the delivery's row and either returns a
    state to stop with (not pending any more, nothing to send) or counts the try on the row
    and returns the Outgoing (with its IDEMPOTENCY_HEADER); that transaction commits before
    anything is sent. The POST then runs outside any transaction, and `record(outcome)` in a
    write transaction of its own, retried in place (record_in_place) when the database is
    busy, so an outcome is never lost to a lock and a sent try is never sent again for one.
    Returns "delivered", "failed" or the claim's state; otherwise raises the task's retry,
    after 2 s * 2**(tries - 1) (CALLBACK_RETRY_BASE_SECONDS sets the 2).
    """
    begin_write()
    outgoing = claim()
    db.session.commit()
    if isinstance(outgoing, str):
        return outgoing
    outcome = outcome_of(outgoing)
    record_in_place(lambda: record(outcome))
    if outcome.delivered or outcome.final:
        return outcome.state
    base = current_app.config.get("CALLBACK_RETRY_BASE_SECONDS", 2)
    raise task.retry(countdown=base * 2 ** (outcome.attempt - 1))


def record_in_place(write: Callable[[], None]) -> None:
    """Run `write()` in a write transaction and commit it, again after each of RECORD_PAUSES
    while the database is busy or went away: for what happens after something was sent, so
    that a lock never makes the task run again and send it again. Raises the last
    OperationalError when every pause is used up."""
    for number, pause in enumerate(RECORD_PAUSES, start=1):
        time.sleep(pause)
        try:
            begin_write()
            write()
            db.session.commit()
            return
        except OperationalError as exc:
            db.session.rollback()
            if number == len(RECORD_PAUSES):
                raise
            logger.info("outcome not recorded yet (%s); trying again", type(exc.orig).__name__)
