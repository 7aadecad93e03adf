"""Change notices to customers (Art. 28(2)): what a notice says about a sub-processor; every
list version is announced to the admins of every account (e-mail and in-app notice), and
becomes effective for an account when its notice period has passed, unless that account
objected. The register (privacy.processors.services) announces its changes here."""

from __future__ import annotations

import uuid
from datetime import date
from datetime import datetime

from flask import render_template
from sqlalchemy import func
from sqlalchemy import select

from privacy import links
from privacy import mail
from privacy import validation
from privacy.accounts.models import Account
from privacy.accounts.models import Member
from privacy.audit import services as audit
from privacy.database import for_account
from privacy.database import utcnow
from privacy.errors import Conflict
from privacy.errors import NotFound
from privacy.errors import ValidationFailed
from privacy.extensions import db
from privacy.processors import rules
from privacy.processors import webhooks
from privacy.processors.models import ListVersion
from privacy.processors.models import Notice
from privacy.processors.models import Objection
from privacy.processors.models import SubProcessor
from privacy.support.models import Operator


def notice_of(sp: SubProcessor, today: date | None = None) -> dict:
    """What a change notice says about `sp` (Art. 28(2), SCC Clause 9), with the transfer
    basis of each location on `today` (default today): frozen per list version."""
    today = today or utcnow().date()
    return {
        "id": str(sp.public_id),
        "legal_name": sp.legal_name,
        "address": sp.address,
        "contact": sp.contact,
        "website": sp.website,
        "purpose": sp.purpose,
        "data_categories": list(sp.data_categories),
        "subject_categories": list(sp.subject_categories),
        "locations": [
            {
                "country": t.country,
                "name": rules.country_name(t.country),
                "basis": t.basis,
                "safeguard": t.detail,
            }
            for t in (rules.transfer(sp, c, today) for c in sp.locations)
        ],
        "services": list(sp.services),
    }


def announce(version: ListVersion) -> int:
    """Record the notice for every account and mail its admins (after the commit); where an
    account has a webhook, the signed POST is queued too (after the commit)."""
    now = utcnow()
    accounts = list(db.session.scalars(select(Account).order_by(Account.id)))
    for account in accounts:
        notice = Notice(account_id=account.id, list_version_id=version.id, notified_at=now)
        db.session.add(notice)
        webhooks.queue(account, notice)
        admins = db.session.scalars(for_account(Member, account).where(Member.role == "admin"))
        text = render_template(
            "mail/subprocessor_notice.txt",
            account=account,
            version=version,
            notice=version.notice,
            base_url=links.base_url(),
        )
        name = version.notice["subprocessor"]["legal_name"]
        subject = f"Sub-processor change notice {version.number}: {name}"
        for admin in admins:
            mail.send_after_commit(admin.email, subject, text)
    db.session.flush()
    return len(accounts)


def notices_for(account: Account) -> list[Notice]:
    return list(
        db.session.scalars(
            for_account(Notice, account).order_by(Notice.notified_at.desc(), Notice.id.desc())
        )
    )


# -- what is effective for an account ----------------------------------------------------

OUTCOMES = ("alternative", "termination", "withdrawn")


def _objection_blocks(objection: Objection | None) -> bool:
    """An objection blocks unless the customer withdrew it."""
    return objection is not None and objection.outcome != "withdrawn"


def effective_for(account: Account, at: datetime | None = None) -> list[SubProcessor]:
    """The sub-processors that may process `account`'s data at `at` (default now).

    A version becomes effective for an account when its notice period has passed, or at
    once for an account created after it was announced (it signed up to that list); an
    objection by the account blocks the sub-processor it names. Removals take effect at once.
    """
    at = at or utcnow()
    objections = {o.list_version_id: o for o in db.session.scalars(for_account(Objection, account))}
    current: dict[int, SubProcessor] = {}
    versions = db.session.scalars(
        select(ListVersion).where(ListVersion.announced_at <= at).order_by(ListVersion.number)
    )
    for version in versions:
        if version.change == "removed":
            current.pop(version.subprocessor_id, None)
            continue
        in_force = version.effective_at <= at or account.created_at >= version.announced_at
        if not in_force:
            continue
        if version.change == "changed":  # the same sub-processor, new terms: an objection
            if _objection_blocks(objections.get(version.id)):  # to them takes it away
                current.pop(version.subprocessor_id, None)
            continue
        if version.replaces_id is not None:
            current.pop(version.replaces_id, None)
        if _objection_blocks(objections.get(version.id)):
            continue
        current[version.subprocessor_id] = version.subprocessor
    return sorted(current.values(), key=lambda sp: sp.legal_name.lower())


def pending_for(account: Account, at: datetime | None = None) -> list[ListVersion]:
    """Announced changes not yet effective for the account, soonest first."""
    at = at or utcnow()
    return [
        version
        for version in db.session.scalars(
            select(ListVersion)
            .where(ListVersion.announced_at <= at, ListVersion.effective_at > at)
            .order_by(ListVersion.effective_at)
        )
        if account.created_at < version.announced_at
    ]


def unread_count(account: Account) -> int:
    return db.session.scalar(
        for_account(Notice, account, func.count(Notice.id)).where(Notice.read_at.is_(None))
    )


def mark_read(account: Account, *, number: int | None = None) -> int:
    """Mark the account's in-app notice of list version `number` (all when None) as read;
    returns how many were unread."""
    query = for_account(Notice, account).where(Notice.read_at.is_(None))
    if number is not None:
        query = query.join(ListVersion, ListVersion.id == Notice.list_version_id).where(
            ListVersion.number == number
        )
    now = utcnow()
    unread = list(db.session.scalars(query))
    for notice in unread:
        notice.read_at = now
    db.session.flush()
    return len(unread)


def version_by_number(number: int) -> ListVersion:
    """The list version with this number; NotFound otherwise."""
    found = db.session.scalar(select(ListVersion).where(ListVersion.number == number))
    if found is None:
        raise NotFound("No such list version.")
    return found


def latest_number(at: datetime | None = None) -> int:
    """The number of the newest list version announced by `at` (0 before the first)."""
    query = select(func.max(ListVersion.number))
    if at is not None:
        query = query.where(ListVersion.announced_at <= at)
    return db.session.scalar(query) or 0


def objections_of(account: Account, at: datetime | None = None) -> list[Objection]:
    """The account's objections (made by `at`, when given), newest first."""
    query = for_account(Objection, account)
    if at is not None:
        query = query.where(Objection.created_at <= at)
    return list(db.session.scalars(query.order_by(Objection.created_at.desc())))


def may_object(account: Account, version: ListVersion, objected: set[int]) -> bool:
    """Whether object_to would accept an objection now (`objected`: list version ids the
    account objected to already)."""
    return (
        version.change != "removed"
        and utcnow() < version.effective_at
        and account.created_at < version.announced_at
        and version.id not in objected
    )


def change_of(version: ListVersion, *, may_object: bool) -> dict:
    """A pending change as the account sees it: the frozen notice and its dates."""
    notice = version.notice
    return {
        "list_version": version.number,
        "change": version.change,
        "subprocessor": notice["subprocessor"],
        "replaces": notice.get("replaces"),
        "announced_at": version.announced_at,
        "effective_at": version.effective_at,
        "may_object": may_object,
        "notice": notice,
    }


def account_view(account: Account, at: datetime | None = None) -> dict:
    """What is effective for `account` at `at` (default now; sub-processors as notice_of
    describes them), the changes pending then, and the account's objections made by then."""
    now = utcnow()
    at = at or now
    objected = {o.list_version_id for o in objections_of(account)}
    return {
        "at": at,
        "list_version": latest_number(at),
        "effective": [notice_of(sp, at.date()) for sp in effective_for(account, at)],
        "pending": [
            change_of(v, may_object=may_object(account, v, objected))
            for v in pending_for(account, at)
        ],
        "objections": objections_of(account, at if at < now else None),
    }


def notified_of(account: Account) -> list[tuple[int, datetime]]:
    """Which list versions the account was notified of, and when (oldest first)."""
    return [
        (n.list_version.number, n.notified_at)
        for n in sorted(notices_for(account), key=lambda n: n.list_version.number)
    ]


def object_to(account: Account, version: ListVersion, *, reason: str, actor: str) -> Objection:
    """An admin objects within the notice period (409 after it, or twice)."""
    try:
        reason = validation.clean_text(reason or "", what="The reason", max_length=5000)
    except ValueError as exc:
        raise ValidationFailed(errors={"reason": [str(exc)]}) from None
    if not reason:
        raise ValidationFailed(errors={"reason": ["Give the reason (at most 5,000 characters)."]})
    if version.change == "removed":
        raise Conflict("A removal cannot be objected to.")
    if utcnow() >= version.effective_at:
        raise Conflict("The notice period of this change has ended; objections are closed.")
    if account.created_at >= version.announced_at:
        raise Conflict("This change was announced before the account existed.")
    existing = db.session.scalar(
        for_account(Objection, account).where(Objection.list_version_id == version.id)
    )
    if existing is not None:
        raise Conflict("The account has objected to this change already.")
    objection = Objection(
        public_id=uuid.uuid4(),
        account_id=account.id,
        list_version_id=version.id,
        subprocessor_id=version.subprocessor_id,
        reason=reason,
        created_at=utcnow(),
        created_by=actor,
    )
    db.session.add(objection)
    db.session.flush()
    audit.record(
        account,
        action="subprocessor.objected",
        object_type="subprocessor_objection",
        object_id=objection.public_id,
        data={"list_version": version.number},
        actor=actor,
    )
    _tell_dpo(account, objection)
    return objection


def _tell_dpo(account: Account, objection: Objection) -> None:
    text = render_template("mail/subprocessor_objection.txt", account=account, objection=objection)
    for operator in db.session.scalars(
        select(Operator).where(Operator.role == "dpo", Operator.disabled_at.is_(None))
    ):
        mail.send_after_commit(
            operator.email,
            f"Objection to sub-processor change {objection.list_version.number}",
            text,
        )


def resolve(objection: Objection, *, outcome: str, resolution: str, actor: str) -> Objection:
    """The DPO records how an objection ended: an alternative for the account, termination,
    or the customer withdrew it (then the change applies to the account after all)."""
    if objection.state == "resolved":
        raise Conflict("This objection was resolved already.")
    errors = {}
    try:
        resolution = validation.clean_text(resolution or "", what="The outcome", max_length=5000)
    except ValueError as exc:
        errors["resolution"] = [str(exc)]
    else:
        if not resolution:
            errors["resolution"] = ["Describe the outcome."]
    if outcome not in OUTCOMES:
        errors["outcome"] = [f"One of {', '.join(OUTCOMES)}."]
    if errors:
        raise ValidationFailed(errors=errors)
    objection.state = "resolved"
    objection.outcome = outcome
    objection.resolution = resolution
    objection.resolved_at = utcnow()
    objection.resolved_by = actor
    account = db.session.get(Account, objection.account_id)
    audit.record(
        account,
        action="subprocessor.objection_resolved",
        object_type="subprocessor_objection",
        object_id=objection.public_id,
        data={"outcome": outcome},
        actor=actor,
    )
    return objection
