"""Due-date oversight: open requests due soon or overdue (per account, and across accounts
for the DPO), failed status callbacks, and the daily reminder to each account's admins."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import time
from datetime import timedelta

from flask import render_template
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update

from privacy import links
from privacy import mail
from privacy.accounts.models import Account
from privacy.accounts.models import Member
from privacy.audit import services as audit
from privacy.database import for_account
from privacy.database import utcnow
from privacy.dsr.models import FINAL
from privacy.dsr.models import CallbackDelivery
from privacy.dsr.models import DataSubjectRequest
from privacy.extensions import db

DUE_SOON_DAYS = 7


def is_overdue(request: DataSubjectRequest, now: datetime | None = None) -> bool:
    return request.status not in FINAL and request.due_at < (now or utcnow())


def list_due(
    account: Account,
    *,
    before: datetime,
    status: str | None = None,
    kind: str | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> list[DataSubjectRequest]:
    """Open requests due before `before` (overdue ones included), newest first; the same
    filters and keyset as services.list_requests."""
    query = for_account(DataSubjectRequest, account).where(
        DataSubjectRequest.status.not_in(FINAL), DataSubjectRequest.due_at < before
    )
    if status:
        query = query.where(DataSubjectRequest.status == status)
    if kind:
        query = query.where(DataSubjectRequest.kind == kind)
    if after_id is not None:
        query = query.where(DataSubjectRequest.id < after_id)
    return list(db.session.scalars(query.order_by(DataSubjectRequest.id.desc()).limit(limit)))


def deliveries_of(request: DataSubjectRequest) -> list[CallbackDelivery]:
    """The request's status callbacks, oldest first (the request is the account's already)."""
    return list(
        db.session.scalars(
            select(CallbackDelivery)
            .where(CallbackDelivery.request_id == request.id)
            .order_by(CallbackDelivery.id)
        )
    )


def failed_callbacks(account: Account) -> list[tuple[uuid.UUID, int]]:
    """(request public id, failed deliveries) for the account's requests whose callbacks
    failed for good, newest request first."""
    query = (
        for_account(
            DataSubjectRequest,
            account,
            DataSubjectRequest.public_id,
            func.count(CallbackDelivery.id),
        )
        .join(CallbackDelivery, CallbackDelivery.request_id == DataSubjectRequest.id)
        .where(CallbackDelivery.state == "failed")
        .group_by(DataSubjectRequest.id, DataSubjectRequest.public_id)
        .order_by(DataSubjectRequest.id.desc())
    )
    return [(public_id, count) for public_id, count in db.session.execute(query)]


# -- across accounts: the DPO's view and the reminder -----------------------------------


@dataclass
class AccountDue:
    """One account's open requests due within DUE_SOON_DAYS or overdue (ids only)."""

    account: Account
    requests: list[DataSubjectRequest] = field(default_factory=list)
    overdue: int = 0

    @property
    def due_soon(self) -> int:
        return len(self.requests) - self.overdue


def due_across_accounts(*, now: datetime | None = None) -> list[AccountDue]:
    """Every account with open requests due within DUE_SOON_DAYS or overdue, most overdue
    first; each account's requests soonest first."""
    now = now or utcnow()
    rows = db.session.execute(
        select(DataSubjectRequest, Account)
        .join(Account, Account.id == DataSubjectRequest.account_id)
        .where(
            DataSubjectRequest.status.not_in(FINAL),
            DataSubjectRequest.due_at < now + timedelta(days=DUE_SOON_DAYS),
        )
        .order_by(DataSubjectRequest.due_at, DataSubjectRequest.id)
    )
    by_account: dict[int, AccountDue] = {}
    for request, account in rows:
        entry = by_account.setdefault(account.id, AccountDue(account))
        entry.requests.append(request)
        entry.overdue += request.due_at < now
    return sorted(by_account.values(), key=lambda e: (-e.overdue, e.account.name, e.account.id))


def accounts_to_remind(*, now: datetime | None = None) -> list[int]:
    """Ids of accounts with a due-soon or overdue request not yet reminded today (UTC)."""
    now = now or utcnow()
    return list(
        db.session.scalars(
            select(DataSubjectRequest.account_id)
            .where(*_due_soon(now), _not_reminded_since(_day_start(now)))
            .distinct()
            .order_by(DataSubjectRequest.account_id)
        )
    )


def remind_account(account: Account, *, actor: str, now: datetime | None = None) -> int:
    """E-mail every admin of the account the list of its open requests due within
    DUE_SOON_DAYS or overdue, at most once per UTC day; returns how many were e-mailed.

    Marks the requests reminded (reminded_at) with one conditional UPDATE first: of two
    runs at once only the one that marks the rows sends, and the mail is queued in the same
    transaction (mail.send_after_commit), so a rollback takes both back.
    """
    now = now or utcnow()
    requests = list(
        db.session.scalars(
            for_account(DataSubjectRequest, account)
            .where(*_due_soon(now))
            .order_by(DataSubjectRequest.due_at, DataSubjectRequest.id)
        )
    )
    if not requests:
        return 0
    marked = db.session.execute(
        update(DataSubjectRequest)
        .where(
            DataSubjectRequest.id.in_([r.id for r in requests]),
            _not_reminded_since(_day_start(now)),
        )
        .values(reminded_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not marked:
        return 0
    for request in requests:
        request.reminded_at = now
    admins = list(
        db.session.scalars(
            for_account(Member, account).where(Member.role == "admin").order_by(Member.id)
        )
    )
    overdue = sum(1 for r in requests if r.due_at < now)
    text = render_template(
        "mail/dsr_reminder.txt",
        account=account,
        requests=requests,
        overdue=overdue,
        now=now,
        days=DUE_SOON_DAYS,
        url=links.external("/requests"),
    )
    subject = (
        f"{account.name}: {overdue} overdue, {len(requests) - overdue} due within "
        f"{DUE_SOON_DAYS} days (data-subject requests)"
    )
    for admin in admins:
        # One message each: admins need not learn each other's addresses from a mail.
        mail.send_after_commit(admin.email, subject, text)
    audit.record(
        account,
        action="dsr.reminded",
        object_type="account",
        object_id=account.public_id,
        data={"requests": len(requests), "overdue": overdue, "admins": len(admins)},
        actor=actor,
    )
    return len(admins)


def _due_soon(now: datetime) -> tuple:
    return (
        DataSubjectRequest.status.not_in(FINAL),
        DataSubjectRequest.due_at < now + timedelta(days=DUE_SOON_DAYS),
    )


def _not_reminded_since(moment: datetime):
    return or_(DataSubjectRequest.reminded_at.is_(None), DataSubjectRequest.reminded_at < moment)


def _day_start(now: datetime) -> datetime:
    return datetime.combine(now.date(), time(0), tzinfo=now.tzinfo)
