"""Account, member and API-token rules: creation, roles, the last admin, tokens."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime

from sqlalchemy import func
from sqlalchemy import update

from privacy.accounts.models import MEMBER_INDEX_SCOPE
from privacy.accounts.models import REGIONS
from privacy.accounts.models import ROLES
from privacy.accounts.models import SCOPES
from privacy.accounts.models import Account
from privacy.accounts.models import ApiToken
from privacy.accounts.models import Member
from privacy.audit import services as audit
from privacy.auth import sessions
from privacy.auth import signin
from privacy.auth.permissions import Authority
from privacy.crypto import token_hash
from privacy.database import email_index
from privacy.database import for_account
from privacy.database import utcnow
from privacy.errors import Conflict
from privacy.errors import Forbidden
from privacy.errors import ValidationFailed
from privacy.extensions import db
from privacy.validation import clean_label
from privacy.validation import clean_name
from privacy.validation import normalize_email

TOKEN_PREFIX = "prv_"  # noqa: S105 - a public prefix, not a secret


def create_account(
    *, name: str, region: str, admin_email: str, admin_name: str | None, actor: str
) -> tuple[Account, Member, str]:
    """Create an account with its first admin and an admin API token; returns the token once."""
    try:
        # Account names reach mail subjects: no control characters (422), never a lost notice.
        name = clean_label(name, what="Account name", max_length=200)
    except ValueError as exc:
        raise ValidationFailed(errors={"name": [str(exc)]}) from None
    if region not in REGIONS:
        raise ValidationFailed(errors={"region": [f"Region must be one of {', '.join(REGIONS)}."]})
    account = Account(public_id=uuid.uuid4(), name=name, region=region)
    db.session.add(account)
    db.session.flush()
    audit.record(
        account,
        action="account.created",
        object_type="account",
        object_id=account.public_id,
        data={"region": region},
        actor=actor,
    )
    member = add_member(account, email=admin_email, name=admin_name, role="admin", actor=actor)
    token, secret = create_token(
        account, name="first admin token", role="admin", scopes=None, member=member, actor=actor
    )
    return account, member, secret


def add_member(account: Account, *, email: str, name: str | None, role: str, actor: str) -> Member:
    """Add a member; raises 409 if the e-mail is already a member of this account."""
    errors: dict[str, list[str]] = {}
    try:
        email = normalize_email(email)
    except ValueError as exc:
        errors["email"] = [str(exc)]
    try:
        display = clean_name(name) if name else None
    except ValueError as exc:
        errors["name"] = [str(exc)]
    if role not in ROLES:
        errors["role"] = [f"Role must be one of {', '.join(ROLES)}."]
    if errors:
        raise ValidationFailed(errors=errors)
    display = display or email.split("@", 1)[0]
    index = email_index(MEMBER_INDEX_SCOPE, email)
    exists = db.session.scalar(
        for_account(Member, account).where(Member.email_index == index).limit(1)
    )
    if exists is not None:
        raise Conflict("This e-mail is already a member of the account.")
    member = Member(account_id=account.id, role=role)
    member.set_contact(name=display, email=email, index_scope=MEMBER_INDEX_SCOPE)
    db.session.add(member)
    db.session.flush()
    audit.record(
        account,
        action="member.added",
        object_type="member",
        object_id=member.public_id,
        data={"role": role},
        actor=actor,
    )
    return member


# Members never expire, so a caller whose own authority ends cannot hand them a role.
MEMBER_GRANT = "a member (members do not expire)"


def invite_member(
    account: Account,
    *,
    email: str,
    name: str | None,
    role: str,
    actor: str,
    granter: Authority | None = None,
) -> Member:
    """Add a member and mail the invitation; its link is their first sign-in.

    `granter` is the caller's authority (None: the platform itself): it must hold the role
    in every area, without an end (403)."""
    if granter is not None and role in ROLES:
        granter.check_grant(role=role, scopes=None, expires_at=None, what=MEMBER_GRANT)
    member = add_member(account, email=email, name=name, role=role, actor=actor)
    return _invite(account, member, actor)


def resend_invitation(
    account: Account, member: Member, *, actor: str, granter: Authority | None = None
) -> Member:
    """A new invitation for a member who has not signed in yet (409 once they have). It
    hands the member's role on again, so `granter` must hold it (403)."""
    if member.joined_at is not None:
        raise Conflict("This member has already signed in; they can ask for a sign-in link.")
    if granter is not None:
        granter.check_grant(role=member.role, scopes=None, expires_at=None, what=MEMBER_GRANT)
    return _invite(account, member, actor)


def _invite(account: Account, member: Member, actor: str) -> Member:
    signin.invite(account, member)
    audit.record(
        account,
        action="member.invited",
        object_type="member",
        object_id=member.public_id,
        actor=actor,
    )
    return member


def _admin_count(account: Account) -> int:
    return db.session.scalar(
        for_account(Member, account, func.count()).where(Member.role == "admin")
    )


def change_role(
    account: Account,
    member: Member,
    *,
    role: str,
    actor: str,
    granter: Authority | None = None,
) -> Member:
    """Change a member's role; the last admin cannot be demoted (409). A promotion hands the
    role on, so `granter` must hold it (403); anyone allowed to manage members may demote.

    Demotion revokes the member's admin tokens.
    """
    if role not in ROLES:
        raise ValidationFailed(errors={"role": [f"Role must be one of {', '.join(ROLES)}."]})
    if role == member.role:
        return member
    if granter is not None and ROLES.index(role) > ROLES.index(member.role):
        granter.check_grant(role=role, scopes=None, expires_at=None, what=MEMBER_GRANT)
    if member.role == "admin" and _admin_count(account) <= 1:
        raise Conflict("The last admin of an account cannot be demoted.")
    old = member.role
    member.role = role
    if role != "admin":
        _revoke_member_tokens(account, member, only_role="admin", actor=actor)
    sessions.end_member_sessions(member, "role_changed", actor=actor)
    audit.record(
        account,
        action="member.role_changed",
        object_type="member",
        object_id=member.public_id,
        data={"from": old, "to": role},
        actor=actor,
    )
    return member


def remove_member(account: Account, member: Member, *, actor: str) -> None:
    """Remove a member and revoke their tokens; the last admin cannot be removed (409)."""
    if member.role == "admin" and _admin_count(account) <= 1:
        raise Conflict("The last admin of an account cannot be removed.")
    _revoke_member_tokens(account, member, only_role=None, actor=actor)
    sessions.end_member_sessions(member, "removed", actor=actor)
    audit.record(
        account,
        action="member.removed",
        object_type="member",
        object_id=member.public_id,
        actor=actor,
    )
    db.session.delete(member)


def _revoke_member_tokens(account, member, *, only_role, actor):
    query = for_account(ApiToken, account).where(
        ApiToken.member_id == member.id, ApiToken.revoked_at.is_(None)
    )
    if only_role:
        query = query.where(ApiToken.role == only_role)
    for token in db.session.scalars(query):
        revoke_token(account, token, actor=actor)


def create_token(
    account: Account,
    *,
    name: str,
    role: str,
    scopes: list[str] | None,
    expires_at: datetime | None = None,
    member: Member | None = None,
    actor: str,
    granter: Authority | None = None,
) -> tuple[ApiToken, str]:
    """Issue a token; only its SHA-256 is stored, the secret is returned this once.

    `granter` is the caller's authority (None: the platform itself). The token belongs to
    the granter's member, so removing or demoting that member revokes it, and it holds no
    higher role, no other area and no later end than the granter (403)."""
    if role not in ROLES:
        raise ValidationFailed(errors={"role": [f"Role must be one of {', '.join(ROLES)}."]})
    if scopes is not None:
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown or not scopes:
            raise ValidationFailed(
                errors={"scopes": [f"Scopes must be a non-empty subset of {', '.join(SCOPES)}."]}
            )
        scopes = sorted(set(scopes))
    if expires_at is not None and expires_at <= utcnow():
        raise ValidationFailed(errors={"expires_at": ["Expiry must be in the future."]})
    if granter is not None:
        if granter.member_id is None or member is None or member.id != granter.member_id:
            raise Forbidden(
                "This token belongs to no member, so it cannot create tokens: "
                "create them from a member's token or from the tokens page."
            )
        granter.check_grant(role=role, scopes=scopes, expires_at=expires_at, what="the new token")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        public_id=uuid.uuid4(),
        account_id=account.id,
        name=name,
        role=role,
        scopes=scopes,
        token_hash=token_hash(secret),
        prefix=secret[:8],
        created_at=utcnow(),
        expires_at=expires_at,
        member_id=member.id if member else None,
    )
    db.session.add(token)
    db.session.flush()
    audit.record(
        account,
        action="token.created",
        object_type="api_token",
        object_id=token.public_id,
        data={"role": role, "scopes": scopes},
        actor=actor,
    )
    return token, secret


def revoke_token(account: Account, token: ApiToken, *, actor: str) -> ApiToken:
    """Revoke a token (idempotent); it answers 401 from the next request on."""
    if token.revoked_at is None:
        db.session.execute(
            update(ApiToken).where(ApiToken.id == token.id).values(revoked_at=utcnow())
        )
        db.session.refresh(token)
        audit.record(
            account,
            action="token.revoked",
            object_type="api_token",
            object_id=token.public_id,
            actor=actor,
        )
    return token


def list_tokens(account: Account) -> list[ApiToken]:
    return list(db.session.scalars(for_account(ApiToken, account).order_by(ApiToken.id)))


def list_members(account: Account) -> list[Member]:
    return list(db.session.scalars(for_account(Member, account).order_by(Member.id)))
