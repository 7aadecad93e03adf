"""Request rules: intake, identity, the state machine, deadlines, rejection and exceptions,
and the locks the worker takes on requests.

Every transition writes a RequestEvent and an audit row in the caller's transaction and
queues the status callbacks; the work itself (package, erasure) runs in the worker
(privacy.dsr.package, privacy.dsr.erasure, queued as the task "dsr.process").
"""

from __future__ import annotations

import uuid
from datetime import datetime
from datetime import timedelta

from sqlalchemy import bindparam
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update

from privacy.accounts.models import Account
from privacy.audit import services as audit
from privacy.database import for_account
from privacy.database import get_for_account
from privacy.database import utcnow
from privacy.dsr import callbacks
from privacy.dsr import deadlines
from privacy.dsr import notices
from privacy.dsr.models import FINAL
from privacy.dsr.models import DataSubjectRequest
from privacy.dsr.models import RequestEvent
from privacy.errors import Conflict
from privacy.errors import NotFound
from privacy.errors import ValidationFailed
from privacy.extensions import db
from privacy.inventory import services as inventory
from privacy.inventory.models import Subject

PENDING = ("received", "unverified", "verified")
# status -> the statuses it may move to
TRANSITIONS = {
    "received": {"unverified", "verified", "rejected", "cancelled"},
    "unverified": {"verified", "rejected", "cancelled"},
    "verified": {"in_progress", "rejected", "cancelled"},
    "in_progress": {"completed", "rejected"},
    "completed": set(),
    "rejected": set(),
    "cancelled": set(),
}
# Art. 17(3): the points under which an erasure may be refused.
EXCEPTIONS = {
    "a": "freedom of expression and information",
    "b": "compliance with a legal obligation or a task in the public interest",
    "c": "public health",
    "d": "archiving, research or statistics in the public interest",
    "e": "the establishment, exercise or defence of legal claims",
}
COMPLAINT = (
    "You may lodge a complaint with a data protection supervisory authority, in particular "
    "in the EU member state of your habitual residence, place of work or of the alleged "
    "infringement (Art. 77 GDPR), and seek a judicial remedy (Art. 79 GDPR)."
)


class DuplicateRequest(Conflict):
    """The controller sent the same subject_request_id again."""

    def __init__(self, existing: DataSubjectRequest):
        super().__init__(
            "A request with this subject_request_id exists already.",
            errors={"existing": str(existing.subject_request_id)},
        )
        self.existing = existing


def submit(
    account: Account,
    *,
    kind: str,
    source: str,
    subject_request_id: uuid.UUID | None = None,
    email: str | None = None,
    email_sha256: str | None = None,
    customer_id: str | None = None,
    submitted_at: datetime | None = None,
    callback_urls: list[str] | None = None,
    message: str | None = None,
    verified: str | None = None,
    actor: str,
) -> DataSubjectRequest:
    """Record a request. `email` is normalized already; at least one identity is given.

    `verified` (a note) records a request that needs no identity check (an authenticated
    controller's) as received and then verified, the same history and audit rows as
    `transition` writes, in one flush: no callback is due, both statuses being pending.
    """
    if not (email or email_sha256 or customer_id):
        raise ValidationFailed(errors={"subject_identities": ["Name the person: an e-mail."]})
    subject_request_id = subject_request_id or uuid.uuid4()
    existing = db.session.scalar(
        for_account(DataSubjectRequest, account).where(
            DataSubjectRequest.subject_request_id == subject_request_id
        )
    )
    if existing is not None:
        raise DuplicateRequest(existing)
    now = utcnow()
    anchor = min(submitted_at or now, now)
    if email and not email_sha256:
        email_sha256 = inventory.email_hash(email)
    request = DataSubjectRequest(
        public_id=uuid.uuid4(),
        account_id=account.id,
        subject_request_id=subject_request_id,
        kind=kind,
        source=source,
        status="received",
        identity_index=inventory.hash_index(account, email_sha256) if email_sha256 else None,
        customer_index=inventory.customer_index(account, customer_id) if customer_id else None,
        callback_urls=list(callback_urls or []),
        submitted_at=submitted_at or now,
        received_at=now,
        due_at=deadlines.due_date(anchor),
    )
    request.seal_requester(email=email, message=message)
    # Appended before the flush, so the new request's history is not loaded from the database.
    _event(request, "received", actor=actor)
    entries = [
        audit.Entry(
            action="dsr.received",
            object_type="dsr_request",
            object_id=request.public_id,
            data={"kind": kind, "source": source},
            actor=actor,
        )
    ]
    if verified is not None:
        request.status = "verified"
        _event(request, "verified", actor=actor, note=verified)
        entries.append(
            audit.Entry(
                action="dsr.verified",
                object_type="dsr_request",
                object_id=request.public_id,
                actor=actor,
            )
        )
    db.session.add(request)
    db.session.flush()
    audit.record_many(account, entries)
    return request


def _event(request: DataSubjectRequest, action: str, *, actor: str, note: str | None = None):
    request.events.append(
        RequestEvent(at=utcnow(), actor=actor, action=action, status=request.status, note=note)
    )


def transition(
    account: Account,
    request: DataSubjectRequest,
    status: str,
    *,
    actor: str,
    note: str | None = None,
    audit_into: list | None = None,
) -> DataSubjectRequest:
    """Move to `status` (409 when the lifecycle does not allow it); audited, calls back.

    With `audit_into`, the audit entry is appended there for the caller to record with the
    others of a batch (`audit.record_many`), in the same transaction.
    """
    if status not in TRANSITIONS[request.status]:
        raise Conflict(f"A request that is {request.status} cannot become {status}.")
    before = request.opendsr_status
    request.status = status
    if status in FINAL:
        request.completed_at = utcnow()
    _event(request, status, actor=actor, note=note)
    entry = audit.Entry(
        action=f"dsr.{status}", object_type="dsr_request", object_id=request.public_id, actor=actor
    )
    if audit_into is not None:
        audit_into.append(entry)
    else:
        audit.record_many(account, [entry])
    if request.opendsr_status != before:
        callbacks.queue_status_callbacks(request)
    return request


def get(account: Account, public_id: uuid.UUID, *, for_update: bool = False) -> DataSubjectRequest:
    """One of the account's requests (404 otherwise). `for_update` locks its row until the
    commit (PostgreSQL), for a decision that depends on its status: a worker's batch may
    start or finish it meanwhile, and a decision taken on what was read before would
    overwrite that. (On SQLite such requests hold the database's write lock already.)"""
    if not for_update:
        return get_for_account(DataSubjectRequest, public_id, account)
    return _one(
        for_account(DataSubjectRequest, account).where(DataSubjectRequest.public_id == public_id)
    )


def get_by_subject_request_id(
    account: Account, subject_request_id: uuid.UUID, *, for_update: bool = False
) -> DataSubjectRequest:
    query = for_account(DataSubjectRequest, account).where(
        DataSubjectRequest.subject_request_id == subject_request_id
    )
    if for_update:
        return _one(query)
    request = db.session.scalar(query)
    if request is None:
        raise NotFound("Request not found.")
    return request


def _one(query) -> DataSubjectRequest:
    request = db.session.scalar(query.with_for_update().execution_options(populate_existing=True))
    if request is None:
        raise NotFound("Request not found.")
    return request


def cancel(account: Account, request: DataSubjectRequest, *, actor: str):
    """The requester withdraws: only while pending (409 once work has started)."""
    if request.status not in PENDING:
        raise Conflict(f"A request that is {request.status} can no longer be cancelled.")
    return transition(account, request, "cancelled", actor=actor)


def extend(
    account: Account,
    request: DataSubjectRequest,
    *,
    months: int,
    reason: str,
    actor: str,
) -> DataSubjectRequest:
    """Art. 12(3): one extension by up to two months, with a reason, before the first due
    date; the requester is told (callback or e-mail)."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(errors={"reason": ["Give the reason for the extension."]})
    if request.status in FINAL:
        raise Conflict(f"A request that is {request.status} cannot be extended.")
    refusal = deadlines.can_extend(
        received_at=_anchor(request),
        due_at=request.due_at,
        extended_at=request.extended_at,
        now=utcnow(),
    )
    if refusal:
        raise Conflict(refusal)
    try:
        request.due_at = deadlines.extended_due_date(_anchor(request), months)
    except ValueError as exc:
        raise ValidationFailed(errors={"months": [str(exc)]}) from None
    request.extended_at = utcnow()
    request.extension_reason = reason
    _event(request, "extended", actor=actor, note=reason)
    audit.record(
        account,
        action="dsr.extended",
        object_type="dsr_request",
        object_id=request.public_id,
        data={"months": months},
        actor=actor,
    )
    callbacks.queue_status_callbacks(request)
    notices.extended(account, request)
    return request


def _anchor(request: DataSubjectRequest) -> datetime:
    return min(request.submitted_at, request.received_at)


def reject(
    account: Account,
    request: DataSubjectRequest,
    *,
    reason: str,
    exception: str | None = None,
    actor: str,
) -> DataSubjectRequest:
    """Refuse with a reason (and the right to complain); `exception` names an Art. 17(3)
    point for an erasure that is refused."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(errors={"reason": ["Give the reason."]})
    if exception is not None:
        if request.kind != "erasure":
            raise ValidationFailed(errors={"exception": ["Art. 17(3) applies to erasure only."]})
        if exception not in EXCEPTIONS:
            raise ValidationFailed(errors={"exception": ["One of a, b, c, d, e."]})
    request.reason = reason
    request.exception = exception
    transition(account, request, "rejected", actor=actor, note=reason)
    notices.rejected(
        account, request, exception=EXCEPTIONS.get(exception or ""), complaint=COMPLAINT
    )
    return request


def find_subjects(account: Account, request: DataSubjectRequest) -> list[Subject]:
    """Every inventory record the request is about, oldest first: the one with its e-mail
    hash and every one with its customer id (a controller's customer id may name several
    records: each is the person's data)."""
    clauses = identity_clauses(request)
    if not clauses:
        return []
    return list(
        db.session.scalars(for_account(Subject, account).where(or_(*clauses)).order_by(Subject.id))
    )


def identity_clauses(request: DataSubjectRequest) -> list:
    """Conditions on subjects naming the request's person, through the keyed indexes."""
    clauses = []
    if request.identity_index:
        clauses.append(Subject.email_hash_index == request.identity_index)
    if request.customer_index:
        clauses.append(Subject.external_ref_index == request.customer_index)
    return clauses


def history_for(account: Account, request: DataSubjectRequest) -> list[DataSubjectRequest]:
    """Every request of the account about the same person, oldest first."""
    clauses = []
    if request.identity_index:
        clauses.append(DataSubjectRequest.identity_index == request.identity_index)
    if request.customer_index:
        clauses.append(DataSubjectRequest.customer_index == request.customer_index)
    return list(
        db.session.scalars(
            for_account(DataSubjectRequest, account)
            .where(or_(*clauses))
            .order_by(DataSubjectRequest.received_at, DataSubjectRequest.id)
        )
    )


def list_requests(
    account: Account,
    *,
    status: str | None = None,
    kind: str | None = None,
    due_before: datetime | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> list[DataSubjectRequest]:
    query = for_account(DataSubjectRequest, account)
    if status:
        query = query.where(DataSubjectRequest.status == status)
    if kind:
        query = query.where(DataSubjectRequest.kind == kind)
    if due_before:
        query = query.where(DataSubjectRequest.due_at < due_before)
    if after_id is not None:
        query = query.where(DataSubjectRequest.id < after_id)
    return list(db.session.scalars(query.order_by(DataSubjectRequest.id.desc()).limit(limit)))


def due_soon(account: Account, *, days: int = 7, now: datetime | None = None):
    """Open requests due within `days`, and overdue ones, soonest first."""
    now = now or utcnow()
    return list(
        db.session.scalars(
            for_account(DataSubjectRequest, account)
            .where(
                DataSubjectRequest.status.not_in(FINAL),
                DataSubjectRequest.due_at < now + timedelta(days=days),
            )
            .order_by(DataSubjectRequest.due_at)
        )
    )


def open_request_ids(limit: int = 1000) -> list[int]:
    """Requests that should be worked on (verified or interrupted), for the sweeper."""
    return list(
        db.session.scalars(
            select(DataSubjectRequest.id)
            .where(DataSubjectRequest.status.in_(("verified", "in_progress")))
            .order_by(DataSubjectRequest.id)
            .limit(limit)
        )
    )


# -- the worker's locks -------------------------------------------------------------------
# Transactions of the worker are few and short, and each one that writes starts with
# `write_lock`: slow work (reading and rendering a package, object storage) happens between
# them, so no lock on a request, the account's audit chain or (SQLite) the database is held
# while it runs.

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


def write_lock(request_id: int) -> None:
    """Make the transaction's first statement a write (SQLite), so that it waits for the
    database's write lock (busy_timeout) rather than failing later: SQLite in WAL mode cannot
    turn a read transaction into a write once another connection has written, and fails at
    once ("database is locked"). A write that changes nothing, on the request's row. Nothing
    on PostgreSQL, whose transactions lock rows instead."""
    if db.session.get_bind().dialect.name == "sqlite":
        db.session.execute(_TOUCH, {"request_id": request_id})


def lock(request_id: int) -> DataSubjectRequest | None:
    """Begin a write transaction on one request; return it as it is now (None if gone).

    The transaction's first statement takes the lock (`write_lock`). On PostgreSQL the row
    is locked until the commit, so a second delivery of the same task waits for the first
    and then sees its result.
    """
    write_lock(request_id)
    return db.session.get(
        DataSubjectRequest, request_id, with_for_update=True, populate_existing=True
    )


def lock_statuses(request_ids: list[int]) -> dict[int, str]:
    """Like `lock`, for several requests, returning only their statuses (absent if gone):
    one statement (two on SQLite), no objects loaded."""
    write_lock(request_ids[0])
    rows = db.session.execute(
        select(_requests.c.id, _requests.c.status)
        .where(_requests.c.id.in_(request_ids))
        .order_by(_requests.c.id)
        .with_for_update()
    )
    return {row.id: row.status for row in rows}


def nothing_to_do(request_id: int) -> str | None:
    """Why the worker has nothing to do for a request now: its status (final, or not yet
    verified), "gone", or "claimed" (an erasure batch that is alive holds it, until its
    `claimed_until`); None when it needs work, and then the caller's transaction holds the
    request's lock (`write_lock`, and the row FOR UPDATE).

    First only the row's state, unlocked: most deliveries during and after a batch find
    their request done or claimed by a live batch, and stop there without waiting for a
    lock or loading anything. Final states stay final; a claim only ends.
    """
    stop = _why_idle(db.session.execute(_STATE, {"request_id": request_id}).one_or_none())
    db.session.rollback()
    if stop:
        return stop
    write_lock(request_id)  # then again, locked
    stop = _why_idle(
        db.session.execute(_STATE.with_for_update(), {"request_id": request_id}).one_or_none()
    )
    if stop:
        db.session.rollback()
    return stop


def _why_idle(state) -> str | None:
    if state is None:
        return "gone"
    if state.status not in ("verified", "in_progress"):
        return state.status
    claimed = state.claimed_until is not None and state.claimed_until > utcnow()
    if state.kind == "erasure" and state.status == "in_progress" and claimed:
        return "claimed"  # a live batch is erasing it
    return None
