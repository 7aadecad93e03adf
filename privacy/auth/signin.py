"""Sign-in by e-mailed link (and the invitations that reuse it), and who may sign in.

Neither the answer to a sign-in request nor the work done before it depends on whether the
address belongs to anyone: the request only queues the address, encrypted, for the worker,
which looks it up and mails one link per account the address is a member of (and one for
the platform console when it is an operator's), or nothing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from flask import render_template
from sqlalchemy import select
from sqlalchemy import update

from privacy import links
from privacy import mail
from privacy.accounts.models import MEMBER_INDEX_SCOPE
from privacy.accounts.models import Account
from privacy.accounts.models import Member
from privacy.auth.models import LoginLink
from privacy.crypto import token_hash
from privacy.database import email_index
from privacy.database import utcnow
from privacy.extensions import db
from privacy.support.models import OPERATOR_INDEX_SCOPE
from privacy.support.models import Operator

LINK_PATH = "/auth/link/"


class LinkRefused(Exception):
    """The link is unknown, used, expired, or its person is gone; the message says which."""


@dataclass
class Destination:
    """One place an address can sign in to: an account (as a member) or the console."""

    label: str
    member: Member | None = None
    operator: Operator | None = None


def invitation_open(member: Member, now=None) -> bool:
    now = now or utcnow()
    days = current_app.config["INVITATION_DAYS"]
    return member.invited_at is not None and now < member.invited_at + timedelta(days=days)


def may_sign_in(member: Member, now=None) -> bool:
    """A member who joined, was added directly, or holds an open invitation."""
    return member.joined_at is not None or member.invited_at is None or invitation_open(member, now)


def destinations(email: str) -> list[Destination]:
    """Where a verified, normalized e-mail may sign in to, in a stable order."""
    now = utcnow()
    found: list[Destination] = []
    rows = db.session.execute(
        select(Member, Account)
        .join(Account, Account.id == Member.account_id)
        .where(Member.email_index == email_index(MEMBER_INDEX_SCOPE, email))
        .order_by(Account.name, Account.id)
    ).all()
    for member, account in rows:
        if may_sign_in(member, now):
            found.append(Destination(account.name, member=member))
    operator = db.session.scalar(
        select(Operator).where(
            Operator.email_index == email_index(OPERATOR_INDEX_SCOPE, email),
            Operator.disabled_at.is_(None),
        )
    )
    if operator is not None:
        found.append(Destination("Platform support console", operator=operator))
    return found


def _new_link(*, member=None, operator=None, purpose: str, lifetime: timedelta) -> str:
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    db.session.add(
        LoginLink(
            token_hash=token_hash(secret),
            purpose=purpose,
            member_id=member.id if member else None,
            operator_id=operator.id if operator else None,
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    return links.external(f"{LINK_PATH}{secret}")


SIGN_IN_MAIL = "auth.sign_in_links"


def request_links(email: str) -> None:
    """Queue the sign-in links of a normalized `email` for the worker (after the commit).

    The same for every address, known or not: one encrypted row and one job. The worker
    finds where the address may sign in and mails the links (sign_in_message).
    """
    mail.compose_after_commit(SIGN_IN_MAIL, email=email)


@mail.composer(SIGN_IN_MAIL)
def sign_in_message(email: str) -> mail.Message | None:
    """In the worker: a link for every destination of `email`, in one message to the address
    on file, or None when it has none (nothing is sent)."""
    found = destinations(email)
    if not found:
        return None
    minutes = current_app.config["SIGNIN_LINK_MINUTES"]
    lifetime = timedelta(minutes=minutes)
    signin_links = [
        (
            d.label,
            _new_link(member=d.member, operator=d.operator, purpose="sign_in", lifetime=lifetime),
        )
        for d in found
    ]
    text = render_template("mail/sign_in.txt", links=signin_links, minutes=minutes)
    # To the address on file as it was given (the form may have it in another case).
    on_file = (found[0].member or found[0].operator).email
    return mail.Message(on_file, "Your sign-in link", text)


def invite(account: Account, member: Member, *, inviter: str | None = None) -> None:
    """Mail an invitation whose link signs the member in; valid INVITATION_DAYS.

    Invitations and their resends are limited per address and per account (mail.limit):
    TooManyRequests (429), before the invitation is written, once either is reached.
    """
    mail.limit("invitation", recipient=member.email, account=account, what="invitations")
    member.invited_at = utcnow()
    days = current_app.config["INVITATION_DAYS"]
    link = _new_link(member=member, purpose="invitation", lifetime=timedelta(days=days))
    db.session.flush()
    _mail(
        member.email,
        f"You are invited to {account.name}",
        "invitation",
        account=account,
        link=link,
        days=days,
    )


def _mail(to: str, subject: str, template: str, **context) -> None:
    text = render_template(f"mail/{template}.txt", **context)
    # Through the worker, after the commit: the link's row exists when the mail arrives.
    mail.send_after_commit(to, subject, text)


def consume(secret: str) -> LoginLink:
    """Use a link once: a second use, an expired link or a departed person is LinkRefused."""
    now = utcnow()
    used = db.session.execute(
        update(LoginLink)
        .where(
            LoginLink.token_hash == token_hash(secret),
            LoginLink.used_at.is_(None),
            LoginLink.expires_at > now,
        )
        .values(used_at=now)
        .returning(LoginLink.id)
    ).scalar()
    if used is None:
        db.session.rollback()
        raise LinkRefused("This link has expired or has been used. Ask for a new one.")
    link = db.session.get(LoginLink, used)
    if link.member_id is not None:
        member = db.session.get(Member, link.member_id)
        if link.purpose == "invitation" and member.joined_at is None:
            if not invitation_open(member, now):
                raise LinkRefused("This invitation has expired. Ask an admin to invite you again.")
    if link.operator_id is not None:
        operator = db.session.get(Operator, link.operator_id)
        if operator.disabled_at is not None:
            raise LinkRefused("This link has expired or has been used. Ask for a new one.")
    return link


def peek(secret: str) -> LoginLink | None:
    """The link, if it could still be used (the confirmation page; nothing is changed)."""
    link = db.session.scalar(select(LoginLink).where(LoginLink.token_hash == token_hash(secret)))
    if link is None or link.used_at is not None or link.expires_at <= utcnow():
        return None
    return link
