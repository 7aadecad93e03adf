"""Web-form requests: intake as unverified, the single-use e-mailed link that verifies them,
and the cancellation of requests whose link was never used.

Art. 12(6) and the EDPB guidance: the person is identified with what is already held, the
e-mail address, and nothing is looked up, collected or sent about anyone before they prove
they read that address's mail. The answer to a submission never depends on the inventory.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime
from datetime import timedelta

from flask import render_template
from sqlalchemy import select
from sqlalchemy import update

from privacy import jobs
from privacy import links
from privacy import mail
from privacy.accounts.models import Account
from privacy.crypto import token_hash
from privacy.database import utcnow
from privacy.dsr import services
from privacy.dsr.models import DataSubjectRequest
from privacy.dsr.models import Verification
from privacy.extensions import db

logger = logging.getLogger(__name__)

LINK_PATH = "/privacy-request/verify/"
LINK_HOURS = 24
# Cancelled a while after the link expires: someone who opened the confirmation page just
# before the end is not cancelled while they click.
EXPIRY_MARGIN = timedelta(hours=1)
# Who the audit log names for what the form's sender does (submit, use the link).
ACTOR = "requester"
KIND_LABELS = {
    "access": "a copy of the personal data held about you",
    "portability": "your personal data in a machine-readable file",
    "erasure": "the erasure of the personal data held about you",
}


class LinkRefused(Exception):
    """The link cannot verify a request; the message says why, `status` is 404 or 400."""

    def __init__(self, message: str, status: int = 400, account: Account | None = None):
        super().__init__(message)
        self.status = status
        self.account = account


def submit(
    account: Account, *, kind: str, email: str, message: str | None = None, actor: str
) -> DataSubjectRequest:
    """Record a form request as unverified and mail its link after the commit.

    `email` is normalized already. The same happens for every address: the inventory is
    not consulted until the link is used. The links mailed are limited per address and per
    account (mail.limit): TooManyRequests (429), before anything is written, past either.
    """
    mail.limit("dsr_verification", recipient=email, account=account, what="confirmation links")
    request = services.submit(
        account, kind=kind, source="form", email=email, message=message or None, actor=actor
    )
    services.transition(account, request, "unverified", actor=actor)
    secret = secrets.token_urlsafe(32)
    db.session.add(
        Verification(
            request_id=request.id,
            token_hash=token_hash(secret),
            expires_at=utcnow() + timedelta(hours=LINK_HOURS),
        )
    )
    text = render_template(
        "mail/dsr_verify.txt",
        account=account,
        request=request,
        wanted=KIND_LABELS[kind],
        link=links.external(f"{LINK_PATH}{secret}"),
        hours=LINK_HOURS,
    )
    mail.send_after_commit(email, f"Confirm your privacy request to {account.name}", text)
    logger.info("form request %s received, awaiting verification", request.public_id)
    return request


def _refusal(verification: Verification, request: DataSubjectRequest, account: Account, now):
    if request.status in ("verified", "in_progress", "completed"):
        return LinkRefused(
            "This request is confirmed already. You will get an e-mail when it is complete.",
            account=account,
        )
    if request.status != "unverified":
        return LinkRefused(
            "This request was cancelled, so the link no longer works. You can send the form again.",
            account=account,
        )
    if verification.used_at is not None:
        return LinkRefused("This link has been used already.", account=account)
    if verification.expires_at <= now:
        return LinkRefused(
            f"This link has expired: it worked for {LINK_HOURS} hours. "
            "Send the form again to get a new one.",
            account=account,
        )
    return None


def _not_valid() -> LinkRefused:
    return LinkRefused("This link is not valid. Check that you copied all of it.", 404)


def peek(secret: str) -> tuple[DataSubjectRequest, Account]:
    """The request the link would verify (for the confirmation page; nothing changes).

    Raises LinkRefused: 404 for an unknown link, 400 for a used or expired one.
    """
    verification = db.session.scalar(
        select(Verification).where(Verification.token_hash == token_hash(secret))
    )
    if verification is None:
        raise _not_valid()
    request = db.session.get(DataSubjectRequest, verification.request_id)
    account = db.session.get(Account, request.account_id)
    refusal = _refusal(verification, request, account, utcnow())
    if refusal is not None:
        raise refusal
    return request, account


def confirm(secret: str, *, actor: str) -> tuple[DataSubjectRequest, Account]:
    """Use the link once: unverified -> verified, processing ("dsr.process") queued after
    the commit.

    Raises LinkRefused as peek() does; a link refused after it was claimed stays used once
    the caller commits.
    """
    now = utcnow()
    claimed = db.session.execute(
        update(Verification)
        .where(
            Verification.token_hash == token_hash(secret),
            Verification.used_at.is_(None),
            Verification.expires_at > now,
        )
        .values(used_at=now)
        .returning(Verification.id)
    ).scalar()
    if claimed is None:
        db.session.rollback()
        peek(secret)  # raises the precise refusal
        raise _not_valid()
    verification = db.session.get(Verification, claimed)
    request = _locked(verification.request_id)
    account = db.session.get(Account, request.account_id)
    if request.status != "unverified":
        raise _refusal(verification, request, account, now) or _not_valid()
    services.transition(account, request, "verified", actor=actor, note="e-mail link used")
    jobs.after_commit("dsr.process", request.id)
    logger.info("form request %s verified", request.public_id)
    return request, account


def _locked(request_id: int) -> DataSubjectRequest:
    # Verification and expiry may meet on one row; the lock makes the second see the first.
    return db.session.scalar(
        select(DataSubjectRequest)
        .where(DataSubjectRequest.id == request_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def expire_unverified(*, actor: str, now: datetime | None = None, limit: int = 1000) -> int:
    """Cancel form requests left unverified past their link's life (plus a margin), each
    in its own commit, dropping the e-mail and message they came with; returns how many."""
    cutoff = (now or utcnow()) - timedelta(hours=LINK_HOURS) - EXPIRY_MARGIN
    ids = list(
        db.session.scalars(
            select(DataSubjectRequest.id)
            .where(
                DataSubjectRequest.status == "unverified",
                DataSubjectRequest.source == "form",
                DataSubjectRequest.received_at < cutoff,
            )
            .order_by(DataSubjectRequest.id)
            .limit(limit)
        )
    )
    cancelled = 0
    for request_id in ids:
        request = _locked(request_id)
        if request is None or request.status != "unverified":
            db.session.rollback()
            continue
        account = db.session.get(Account, request.account_id)
        services.transition(
            account,
            request,
            "cancelled",
            actor=actor,
            note=f"not verified within {LINK_HOURS} hours",
        )
        # Nobody proved the address is theirs: keep no more of it than the keyed hash.
        request.email_ct = request.message_ct = None
        db.session.commit()
        cancelled += 1
    if cancelled:
        logger.info("cancelled %d unverified form request(s)", cancelled)
    return cancelled
