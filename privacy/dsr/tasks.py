"""The worker side of requests: process one (package or erasure), resume stuck ones.

Transactions here are few and short, and each one that writes starts with `lock`: slow work
(reading and rendering the package, object storage) happens between them, so no lock on the
request, the account's audit chain or (SQLite) the database is held while it runs.
"""

from __future__ import annotations

import logging

from celery import shared_task
from sqlalchemy import bindparam
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import OperationalError

from privacy.accounts.models import Account
from privacy.dsr import erasure
from privacy.dsr import ledger
from privacy.dsr import package
from privacy.dsr import services
from privacy.dsr.models import DataSubjectRequest
from privacy.extensions import db

logger = logging.getLogger(__name__)


def lock(request_id: int) -> DataSubjectRequest | None:
    """Begin a write transaction on one request; return it as it is now (None if gone).

    The transaction's first statement takes the lock. SQLite in WAL mode cannot turn a read
    transaction into a write once another connection has written: it fails at once ("database
    is locked") instead of waiting, so the first statement is a write, which waits for the
    lock (busy_timeout). On PostgreSQL the row is locked until the commit, so a second
    delivery of the same task waits for the first and then sees its result.
    """
    _touch(request_id)
    return db.session.get(
        DataSubjectRequest, request_id, with_for_update=True, populate_existing=True
    )


def lock_status(request_id: int) -> str | None:
    """Like `lock`, but return only the request's status (None if gone): one statement,
    no objects loaded."""
    _touch(request_id)
    return db.session.execute(_STATUS, {"request_id": request_id}).scalar()


def _touch(request_id: int) -> None:
    if db.session.get_bind().dialect.name == "sqlite":
        db.session.execute(_TOUCH, {"request_id": request_id})


# Core statements (no ORM bookkeeping), built once.
_requests = DataSubjectRequest.__table__
_TOUCH = (
    update(_requests)
    .where(_requests.c.id == bindparam("request_id"))
    .values(status=_requests.c.status)
)
_STATUS = (
    select(_requests.c.status).where(_requests.c.id == bindparam("request_id")).with_for_update()
)


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
    request = lock(request_id)
    if request is None:
        db.session.rollback()
        return "gone"
    account = db.session.get(Account, request.account_id)
    public_id, kind, status = request.public_id, request.kind, request.status
    if status not in ("verified", "in_progress"):
        db.session.rollback()
        return status
    if kind == "erasure":
        status = _erase(account, request)
    else:
        if status == "verified":
            services.transition(account, request, "in_progress", actor="system")
            db.session.commit()
        else:
            db.session.rollback()
        status = _deliver_package(request_id)
    logger.info("request %s %s", public_id, status)
    return status


def _erase(account: Account, request: DataSubjectRequest) -> str:
    """The steps of privacy.dsr.erasure in two transactions (the first is the caller's),
    with the ledger entry and the receipt written to object storage between them."""
    request_id = request.id
    prepared = erasure.prepare(account, request)
    if request.status == "verified":
        # Last before the commit: the audit row locks the account's audit chain until then.
        services.transition(account, request, "in_progress", actor="system")
    # The second transaction checks under its lock what others may have changed meanwhile
    # (the status, the subject's holdings) instead of loading everything again: keep the
    # request (with its history and instructions), the account and the subject loaded.
    db.session().expire_on_commit = False
    db.session.commit()  # no longer cancellable; the ledger time fixed for re-runs
    if prepared.entry is not None:
        ledger.write(prepared.entry)  # before anything is deleted
    package.put(prepared.prefix, "receipt.json", prepared.receipt)

    status = lock_status(request_id)
    if status != "in_progress":
        # Rejected meanwhile (nothing was deleted), or completed by another run.
        db.session.rollback()
        if status != "completed":
            if prepared.entry is not None:
                ledger.remove(prepared.entry)  # a restore must not erase them either
            package.remove(prepared.prefix, "receipt.json")
        return status or "gone"
    erasure.finish(account, request, prepared)
    db.session.commit()
    return "completed"


def _deliver_package(request_id: int) -> str:
    """Collect and render the package in a read-only transaction, then complete."""
    from privacy.dsr import notices
    from privacy.dsr import results

    request = db.session.get(DataSubjectRequest, request_id, populate_existing=True)
    account = db.session.get(Account, request.account_id)
    subject = services.find_subject(account, request)
    subject_ref = subject.public_id if subject is not None else None
    prefix = package.prefix_for(account, request)
    count = package.write_access(account, request, subject)
    db.session.rollback()  # ends the read-only transaction: nothing in it is kept

    request = lock(request_id)
    if request is None or request.status != "in_progress":
        # Rejected while we rendered (nothing to deliver), or completed by another run
        # (whose package this one replaced with the same content).
        status = request.status if request is not None else "gone"
        db.session.rollback()
        if status != "completed":
            package.remove(prefix, *package.ACCESS_FILES)
        return status
    account = db.session.get(Account, request.account_id)
    request.no_data_held = subject_ref is None
    request.subject_ref = subject_ref
    request.results_prefix = prefix
    request.results_count = count
    url = results.issue_link(request)
    services.transition(account, request, "completed", actor="system")
    notices.completed(account, request, url)
    db.session.commit()
    return "completed"


@shared_task(name="dsr.resume")
def resume() -> int:
    """Beat: (re)queue requests left verified or in progress (a lost message, a killed
    worker). Processing is idempotent, so queueing one twice does no harm."""
    ids = services.open_request_ids()
    for request_id in ids:
        process.delay(request_id)
    return len(ids)
