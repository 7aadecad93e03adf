"""Every task of the data-subject requests, as the worker runs them: process a request
(package or erasure), resume stuck ones, deliver status callbacks, cancel unverified form
requests, remind admins of due dates. Each loads, calls the services, commits; the work and
its transactions are privacy.dsr.package's and privacy.dsr.erasure's. Services queue these
by name (privacy.jobs)."""

from __future__ import annotations

import logging

from celery import shared_task
from sqlalchemy.exc import OperationalError

from privacy.accounts.models import Account
from privacy.audit import services as audit
from privacy.dsr import callbacks
from privacy.dsr import erasure
from privacy.dsr import package
from privacy.dsr import reminders
from privacy.dsr import services
from privacy.dsr import verification
from privacy.dsr.models import DataSubjectRequest
from privacy.extensions import db

logger = logging.getLogger(__name__)


@shared_task(
    name="dsr.process",
    acks_late=True,
    # OperationalError: the database went away, or SQLite stayed locked past busy_timeout.
    autoretry_for=(OSError, OperationalError),
    retry_backoff=True,
    max_retries=5,
)
def process(request_id: int) -> str:
    """Verified -> in progress -> completed. Safe to run twice, at once or after a crash."""
    stop = services.nothing_to_do(request_id)
    if stop is not None:
        return stop
    request = db.session.get(DataSubjectRequest, request_id, populate_existing=True)
    account = db.session.get(Account, request.account_id)
    public_id = request.public_id
    if request.kind == "erasure":
        status = erasure.erase(account, request, actor=audit.SYSTEM)
    else:
        status = package.deliver(account, request, actor=audit.SYSTEM)
    logger.info("request %s %s", public_id, status)
    return status


@shared_task(name="dsr.resume")
def resume() -> int:
    """Beat: (re)queue requests left verified or in progress (a lost message, a killed
    worker). Processing is idempotent, so queueing one twice does no harm."""
    ids = services.open_request_ids()
    for request_id in ids:
        process.delay(request_id)
    return len(ids)


@shared_task(
    name="dsr.deliver_callback",
    bind=True,
    max_retries=None,  # the tries are counted in the delivery's row (outbound.MAX_ATTEMPTS)
    acks_late=True,
    soft_time_limit=60,  # bounds a receiver that trickles its headers (prefork pools)
    time_limit=90,
)
def deliver_callback(self, delivery_id: int) -> str:
    """One try of a status callback's delivery (callbacks.deliver)."""
    return callbacks.deliver(self, delivery_id)


@shared_task(name="dsr.expire_unverified", acks_late=True)
def expire_unverified() -> int:
    """Beat (hourly): cancel web-form requests nobody verified in time."""
    return verification.expire_unverified(actor=audit.SYSTEM)


@shared_task(name="dsr.remind", acks_late=True)
def remind() -> int:
    """Beat, daily: remind each account's admins of requests due soon or overdue. Safe to
    run again the same day: accounts reminded today are skipped."""
    sent = 0
    for account_id in reminders.accounts_to_remind():
        account = db.session.get(Account, account_id)
        sent += reminders.remind_account(account, actor=audit.SYSTEM)
        db.session.commit()  # per account: a failure later does not resend earlier ones
    logger.info("due-date reminders sent to %s admins", sent)
    return sent
