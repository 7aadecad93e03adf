"""Server-side browser sessions: start, resolve on each request, end.

The signed Flask cookie carries only a random secret (`sid`) and the CSRF token; the row
keyed by the secret's SHA-256 says who is signed in, since when, and whether it has ended.
A session ends after PRIVACY_SESSION_IDLE_MINUTES without a request, PRIVACY_SESSION_MAX_HOURS
after sign-in, on sign-out, and for every session of a member whose role changes or who is
removed. A session used after it ended is refused and audited.

This module is the browser's authentication edge: it reads the cookie and sets `g.principal`,
`g.actor` and `g.account`. The functions other services call (`end_member_sessions`,
`end_operator_sessions`) take everything they need as arguments, the actor included.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from flask import g
from flask import request
from flask import session as cookie
from sqlalchemy import select
from sqlalchemy import update

from privacy.accounts.models import Account
from privacy.accounts.models import Member
from privacy.audit import services as audit
from privacy.auth.models import UserSession
from privacy.crypto import token_hash
from privacy.database import begin_write
from privacy.database import utcnow
from privacy.extensions import db
from privacy.support.models import Operator
from privacy.support.models import SupportGrant

_CACHE = "privacy.principal"
# last_seen_at is written at most this often: the idle limit is minutes, not seconds.
TOUCH_GRANULARITY = timedelta(seconds=30)


@dataclass
class Principal:
    """Who a page request acts as: a member of `account`, or an operator (maybe in one)."""

    session: UserSession
    account: Account | None
    member: Member | None = None
    operator: Operator | None = None
    grant: SupportGrant | None = None

    @property
    def actor(self) -> str:
        if self.member is not None:
            return f"member:{self.member.public_id}"
        return f"operator:{self.operator.public_id}"


def _idle_limit() -> timedelta:
    return timedelta(minutes=current_app.config["SESSION_IDLE_MINUTES"])


def start(*, member: Member | None = None, operator: Operator | None = None, method: str) -> None:
    """Sign the browser in as `member` or `operator` (a fresh cookie: no session fixation)."""
    now = utcnow()
    secret = secrets.token_urlsafe(32)
    row = UserSession(
        token_hash=token_hash(secret),
        member_id=member.id if member else None,
        operator_id=operator.id if operator else None,
        account_id=member.account_id if member else None,
        method=method,
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=current_app.config["SESSION_MAX_HOURS"]),
    )
    db.session.add(row)
    if member is not None and member.joined_at is None:
        member.joined_at = now
    db.session.flush()
    account = db.session.get(Account, member.account_id) if member else None
    actor = f"member:{member.public_id}" if member else f"operator:{operator.public_id}"
    audit.record(
        account,
        action="session.started",
        object_type="session",
        object_id=row.id,
        data={"method": method},
        actor=actor,
    )
    cookie.clear()
    cookie["sid"] = secret
    forget()


def current() -> Principal | None:
    """The principal of this request's cookie, or None (ended sessions are refused, audited).

    It writes (the last-seen time, a refusal) with `begin_write`, not `@writes`: it runs
    during the authentication of every page, GETs included, and writes only now and then."""
    # Cached on the request, not on g: an app context can outlive one request.
    if _CACHE in request.environ:
        return _remember(request.environ[_CACHE])
    request.environ[_CACHE] = None
    secret = cookie.get("sid")
    if not secret or not isinstance(secret, str):
        return None
    row = db.session.scalar(select(UserSession).where(UserSession.token_hash == token_hash(secret)))
    if row is None:
        cookie.pop("sid", None)
        return None
    now = utcnow()
    reason = None
    if row.ended_at is not None:
        reason = row.end_reason or "ended"
    elif now - row.last_seen_at > _idle_limit():
        reason = "idle"
    elif now >= row.expires_at:
        reason = "lifetime"
    member = operator = account = grant = None
    if reason is None and row.member_id is None and row.operator_id is None:
        reason = "removed"
    if reason is None and row.member_id is not None:
        member = db.session.get(Member, row.member_id)
        if member is None or member.account_id != row.account_id:
            reason = "removed"
        else:
            account = db.session.get(Account, member.account_id)
    if reason is None and row.operator_id is not None:
        operator = db.session.get(Operator, row.operator_id)
        if operator is None or operator.disabled_at is not None:
            reason = "operator_disabled"
        elif row.account_id is not None:
            grant = db.session.get(SupportGrant, row.grant_id) if row.grant_id else None
            if grant is None or not grant.active(now) or grant.account_id != row.account_id:
                # The grant ran out or was revoked: back to the operator's own pages.
                _leave_account(row, now, "grant_inactive")
                grant = None
            else:
                account = db.session.get(Account, row.account_id)
    if reason is not None:
        _refuse(row, now, reason)
        cookie.pop("sid", None)
        return None
    if now - row.last_seen_at > TOUCH_GRANULARITY:
        begin_write()
        row.last_seen_at = now
        db.session.commit()
    principal = Principal(row, account, member=member, operator=operator, grant=grant)
    request.environ[_CACHE] = principal
    return _remember(principal)


def _remember(principal: Principal | None) -> Principal | None:
    g.principal = principal
    if principal is not None:
        g.actor = principal.actor
        g.account = principal.account
    return principal


def forget() -> None:
    """Drop the cached principal of this request (after signing in or out)."""
    request.environ.pop(_CACHE, None)
    g.pop("principal", None)


def _refuse(row: UserSession, now, reason: str) -> None:
    """End the session if it has not ended yet, and put the refused use on record."""
    begin_write()
    if row.ended_at is None:
        row.ended_at, row.end_reason = now, reason
    account = db.session.get(Account, row.account_id) if row.account_id else None
    audit.record(
        account,
        action="session.refused",
        object_type="session",
        object_id=row.id,
        data={"reason": reason},
        actor=audit.SYSTEM,
    )
    db.session.commit()


def _leave_account(row: UserSession, now, reason: str) -> None:
    begin_write()
    account = db.session.get(Account, row.account_id)
    audit.record(
        account,
        action="support.left",
        object_type="session",
        object_id=row.id,
        data={"reason": reason},
        actor=audit.SYSTEM,
    )
    row.account_id = row.grant_id = None
    db.session.commit()


def end_current(reason: str = "signed_out") -> None:
    principal = current()
    if principal is not None:
        person = principal.member or principal.operator
        kind = "member" if principal.member else "operator"
        account = principal.account if principal.member else None
        _end([principal.session.id], reason, account, principal.actor, (kind, person.public_id))
        db.session.commit()
    cookie.clear()
    forget()


def end_member_sessions(member: Member, reason: str, *, actor: str) -> int:
    """End every live session of `member` (role change, removal, sign out everywhere)."""
    ids = list(
        db.session.scalars(
            select(UserSession.id).where(
                UserSession.member_id == member.id, UserSession.ended_at.is_(None)
            )
        )
    )
    account = db.session.get(Account, member.account_id)
    _end(ids, reason, account, actor, ("member", member.public_id))
    return len(ids)


def end_operator_sessions(operator: Operator, reason: str, *, actor: str) -> int:
    """End every live session of `operator` (disabled, sign out everywhere)."""
    ids = list(
        db.session.scalars(
            select(UserSession.id).where(
                UserSession.operator_id == operator.id, UserSession.ended_at.is_(None)
            )
        )
    )
    _end(ids, reason, None, actor, ("operator", operator.public_id))
    return len(ids)


def _end(ids: list[int], reason: str, account, actor: str, person: tuple) -> None:
    if not ids:
        return
    db.session.execute(
        update(UserSession)
        .where(UserSession.id.in_(ids), UserSession.ended_at.is_(None))
        .values(ended_at=utcnow(), end_reason=reason)
    )
    audit.record(
        account,
        action="session.ended",
        object_type=person[0],
        object_id=person[1],
        data={"sessions": len(ids), "reason": reason},
        actor=actor,
    )


def open_account(principal: Principal, grant: SupportGrant) -> None:
    """An operator enters a customer account through an active grant of theirs."""
    row = principal.session
    row.account_id, row.grant_id = grant.account_id, grant.id
    account = db.session.get(Account, grant.account_id)
    audit.record(
        account,
        action="support.opened",
        object_type="support_grant",
        object_id=grant.public_id,
        data={"access": grant.access},
        actor=principal.actor,
    )
    db.session.commit()


def leave_account(principal: Principal) -> None:
    if principal.session.account_id is not None:
        _leave_account(principal.session, utcnow(), "left")
