"""The worker side of requests: process one (package or erasure), resume stuck ones.

Transactions here are few and short, and each one that writes starts with `lock`: slow work
(reading and rendering the package, object storage) happens between them, so no lock on the
request, the account's audit chain or (SQLite) the database is held while it runs.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from sqlalchemy import bindparam
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import OperationalError

from privacy.accounts.models import Account
from privacy.audit import services as audit
from privacy.database import for_account
from privacy.database import utcnow
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


def lock_statuses(request_ids: list[int]) -> dict[int, str]:
    """Like `lock`, for several requests, returning only their statuses (absent if gone):
    one statement (two on SQLite), no objects loaded."""
    _touch(request_ids[0])
    rows = db.session.execute(
        select(_requests.c.id, _requests.c.status)
        .where(_requests.c.id.in_(request_ids))
        .order_by(_requests.c.id)
        .with_for_update()
    )
    return {row.id: row.status for row in rows}


def _touch(request_id: int) -> None:
    if db.session.get_bind().dialect.name == "sqlite":
        db.session.execute(_TOUCH, {"request_id": request_id})


# Core statements (no ORM bookkeeping), built once.
_requests = DataSubjectRequest.__table__
_STATE = select(_requests.c.status, _requests.c.kind, _requests.c.claimed_until).where(
    _requests.c.id == bindparam("request_id")
)
_TOUCH = (
    update(_requests)
    .where(_requests.c.id == bindparam("request_id"))
    .values(status=_requests.c.status)
)


# An erasure task also takes up to this many other verified erasures of the same account, in
# the same two transactions: commits, the account's audit-chain lock and the lookups are
# shared, so a burst of erasures (a controller's 1,000 at once) drains many times faster.
ERASURE_BATCH = 100
# How long a worker's claim on the erasures of its batch holds. Other deliveries of their
# tasks meanwhile leave them alone; once it passes, the worker is presumed dead and the
# request is worked again (by `resume`, or a redelivered task). A batch takes well under a
# second; the claim is long enough for slow object storage.
CLAIM = timedelta(minutes=2)


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
    # First only the row's state, unlocked: most deliveries during and after a batch find
    # their request done or claimed by a live batch, and stop here without waiting for a
    # lock or loading anything. Final states stay final; a claim only ends.
    stop = _nothing_to_do(db.session.execute(_STATE, {"request_id": request_id}).one_or_none())
    db.session.rollback()
    if stop:
        return stop
    _touch(request_id)  # then again, locked
    stop = _nothing_to_do(
        db.session.execute(_STATE.with_for_update(), {"request_id": request_id}).one_or_none()
    )
    if stop:
        db.session.rollback()
        return stop
    request = db.session.get(DataSubjectRequest, request_id, populate_existing=True)
    account = db.session.get(Account, request.account_id)
    public_id, kind, status = request.public_id, request.kind, request.status
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


def _nothing_to_do(state) -> str | None:
    """Why a request needs no work now (its status, "gone" or "claimed"); None if it does."""
    if state is None:
        return "gone"
    if state.status not in ("verified", "in_progress"):
        return state.status
    claimed = state.claimed_until is not None and state.claimed_until > utcnow()
    if state.kind == "erasure" and state.status == "in_progress" and claimed:
        return "claimed"  # a live batch is erasing it
    return None


def _erase(account: Account, request: DataSubjectRequest) -> str:
    """Erase `request`, and up to ERASURE_BATCH - 1 other verified erasures of its account
    (`_claim`), with the steps of privacy.dsr.erasure in two transactions (the first is the
    caller's), the ledger entries and receipts written to object storage between them.
    Returns `request`'s status."""
    batch = _claim(account, request)
    found = erasure.find_subjects(account, batch)
    batch = _one_per_subject(batch, found)
    claimed_until = utcnow() + CLAIM
    work = []
    entries: list = []
    for each in batch:
        prepared = erasure.prepare(account, each, found[each.id])
        each.claimed_until = claimed_until
        if each.status == "verified":
            services.transition(account, each, "in_progress", actor="system", audit_into=entries)
        work.append((each, prepared))
    db.session.flush()
    # Last before the commit: the audit rows lock the account's audit chain until then.
    audit.record_many(account, entries)
    # The second transaction checks under its lock what others may have changed meanwhile
    # (the statuses, the subjects' holdings) instead of loading everything again: keep the
    # requests (with their history and instructions), the account and the subjects loaded.
    db.session().expire_on_commit = False
    db.session.commit()  # no longer cancellable; the ledger times fixed for re-runs
    try:
        return _finish_batch(account, request, work)
    except Exception:
        # Object storage or the database failed: give the claims back, so that the task's
        # retry works the batch again at once rather than after the claim. (A killed worker
        # runs nothing more: its claims run out.)
        db.session.rollback()
        _release([each.id for each, _ in work])
        raise


def _finish_batch(account: Account, request: DataSubjectRequest, work: list) -> str:
    for _, prepared in work:
        for entry in prepared.entries:
            ledger.write(entry)  # before anything is deleted
        package.put(prepared.prefix, "receipt.json", prepared.receipt)

    statuses = lock_statuses([each.id for each, _ in work])
    held = erasure.held_by([s for _, p in work for s in p.subjects])
    entries = []
    for each, prepared in work:
        status = statuses.get(each.id)
        if status != "in_progress":
            # Rejected meanwhile (nothing was deleted), or completed by another run.
            if status != "completed":
                for entry in prepared.entries:
                    ledger.remove(entry)  # a restore must not erase them either
                package.remove(prepared.prefix, "receipt.json")
            continue
        erasure.finish(account, each, prepared, held=held, audit_into=entries)
        statuses[each.id] = "completed"
    db.session.flush()
    audit.record_many(account, entries)
    db.session.commit()
    if len(work) > 1:
        logger.info("erasure batch of %d requests of account %s", len(work), account.public_id)
    return statuses.get(request.id) or "gone"


def _release(request_ids: list[int]) -> None:
    """End the claims on requests still in progress; best effort (a claim also runs out)."""
    try:
        _touch(request_ids[0])
        db.session.execute(
            update(_requests)
            .where(_requests.c.id.in_(request_ids), _requests.c.status == "in_progress")
            .values(claimed_until=None)
        )
        db.session.commit()
    except Exception:
        db.session.rollback()
        logger.warning("claims on %d erasures not released; they run out", len(request_ids))


def _claim(account: Account, request: DataSubjectRequest) -> list[DataSubjectRequest]:
    """`request` (locked by the caller), then up to ERASURE_BATCH - 1 other verified
    erasures of the account, oldest first, loaded with their history and instructions.

    On PostgreSQL they are locked FOR UPDATE SKIP LOCKED: rows another worker holds (its own
    batch, or a task looking at its request) are left to it. On SQLite the transaction holds
    the database's write lock already.
    """
    ids = db.session.scalars(
        for_account(DataSubjectRequest, account, DataSubjectRequest.id)
        .where(
            DataSubjectRequest.kind == "erasure",
            DataSubjectRequest.status == "verified",
            DataSubjectRequest.id != request.id,
        )
        .order_by(DataSubjectRequest.id)
        .limit(ERASURE_BATCH - 1)
        .with_for_update(skip_locked=True)
    ).all()
    if not ids:
        return [request]
    others = db.session.scalars(
        select(DataSubjectRequest)
        .where(DataSubjectRequest.id.in_(ids))
        .order_by(DataSubjectRequest.id)
        .execution_options(populate_existing=True)
    ).all()
    return [request, *others]


def _one_per_subject(batch: list[DataSubjectRequest], found: dict) -> list[DataSubjectRequest]:
    """Two erasures of the same record in one batch: keep the first; the other stays
    verified for its own task, which will find no one left (or only what the first left)."""
    seen: set = set()
    kept = []
    for each in batch:
        ids = {subject.id for subject in found[each.id]}
        if ids & seen and each is not batch[0]:
            continue
        seen |= ids
        kept.append(each)
    return kept


def _deliver_package(request_id: int) -> str:
    """Collect and render the package in a read-only transaction, then complete."""
    from privacy.dsr import notices
    from privacy.dsr import results

    request = db.session.get(DataSubjectRequest, request_id, populate_existing=True)
    account = db.session.get(Account, request.account_id)
    subjects = services.find_subjects(account, request)
    subject_ref = subjects[0].public_id if subjects else None
    prefix = package.prefix_for(account, request)
    count = package.write_access(account, request, subjects)
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
