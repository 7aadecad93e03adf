"""Operators and support grants: who of the platform's staff may enter which account, how long."""

from __future__ import annotations

import uuid
from datetime import datetime
from datetime import timedelta

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update

from privacy.accounts.models import Account
from privacy.audit import services as audit
from privacy.audit.models import AuditEvent
from privacy.auth import sessions
from privacy.auth.permissions import Authority
from privacy.auth.permissions import support_permissions
from privacy.database import email_index
from privacy.database import for_account
from privacy.database import utcnow
from privacy.errors import Conflict
from privacy.errors import ValidationFailed
from privacy.extensions import db
from privacy.support.models import ACCESS
from privacy.support.models import OPERATOR_INDEX_SCOPE
from privacy.support.models import OPERATOR_ROLES
from privacy.support.models import Operator
from privacy.support.models import SupportGrant
from privacy.validation import clean_name
from privacy.validation import normalize_email

MAX_GRANT = timedelta(hours=72)


def create_operator(*, email: str, name: str | None, role: str, actor: str) -> Operator:
    errors: dict[str, list[str]] = {}
    try:
        email = normalize_email(email)
    except ValueError as exc:
        errors["email"] = [str(exc)]
    try:
        display = clean_name(name) if name else None
    except ValueError as exc:
        errors["name"] = [str(exc)]
    if role not in OPERATOR_ROLES:
        errors["role"] = [f"Role must be one of {', '.join(OPERATOR_ROLES)}."]
    if errors:
        raise ValidationFailed(errors=errors)
    if find_operator(email) is not None:
        raise Conflict("This e-mail is already an operator.")
    operator = Operator(public_id=uuid.uuid4(), role=role)
    operator.set_contact(
        name=display or email.split("@", 1)[0], email=email, index_scope=OPERATOR_INDEX_SCOPE
    )
    db.session.add(operator)
    db.session.flush()
    audit.record(
        None,
        action="operator.created",
        object_type="operator",
        object_id=operator.public_id,
        data={"role": role},
        actor=actor,
    )
    return operator


def find_operator(email: str) -> Operator | None:
    return db.session.scalar(
        select(Operator).where(Operator.email_index == email_index(OPERATOR_INDEX_SCOPE, email))
    )


def disable_operator(operator: Operator, *, actor: str) -> None:
    """Disable an operator (idempotent): they can no longer sign in, and their sessions end.

    The disabling is recorded as `actor`'s doing, the end of the sessions as the system's."""
    if operator.disabled_at is None:
        operator.disabled_at = utcnow()
        sessions.end_operator_sessions(operator, "operator_disabled", actor=audit.SYSTEM)
        audit.record(
            None,
            action="operator.disabled",
            object_type="operator",
            object_id=operator.public_id,
            actor=actor,
        )


def list_operators() -> list[Operator]:
    return list(
        db.session.scalars(
            select(Operator).where(Operator.disabled_at.is_(None)).order_by(Operator.id)
        )
    )


def create_grant(
    account: Account,
    *,
    operator_email: str,
    access: str,
    expires_at: datetime,
    reason: str,
    actor: str,
    granter: Authority | None = None,
) -> SupportGrant:
    """Let one operator in: read-only unless `access` is write, for at most 72 hours.

    `granter` is the caller's authority (None: the platform itself): it must hold everything
    the grant allows, and the grant may not outlast it (403)."""
    errors: dict[str, list[str]] = {}
    operator = None
    try:
        operator = find_operator(normalize_email(operator_email))
    except ValueError as exc:
        errors["operator_email"] = [str(exc)]
    else:
        if operator is None or operator.disabled_at is not None:
            errors["operator_email"] = ["No platform support operator has this e-mail."]
    if access not in ACCESS:
        errors["access"] = [f"Access must be one of {', '.join(ACCESS)}."]
    now = utcnow()
    if expires_at <= now:
        errors["expires_at"] = ["Expiry must be in the future."]
    elif expires_at - now > MAX_GRANT + timedelta(minutes=1):
        errors["expires_at"] = ["A grant lasts at most 72 hours."]
    reason = (reason or "").strip()
    if not reason or len(reason) > 500:
        errors["reason"] = ["Give a reason of 1 to 500 characters (e.g. the ticket number)."]
    if errors:
        raise ValidationFailed(errors=errors)
    expires_at = min(expires_at, now + MAX_GRANT)
    if granter is not None:
        granter.check_all(support_permissions(access), what=f"a {access} support grant")
        granter.check_end(expires_at, what="the grant")
    grant = SupportGrant(
        public_id=uuid.uuid4(),
        account_id=account.id,
        operator_id=operator.id,
        access=access,
        reason=reason,
        created_by=actor,
        created_at=now,
        expires_at=expires_at,
    )
    db.session.add(grant)
    db.session.flush()
    audit.record(
        account,
        action="grant.created",
        object_type="support_grant",
        object_id=grant.public_id,
        data={
            "operator": str(operator.public_id),
            "access": access,
            "expires_at": grant.expires_at.isoformat(timespec="seconds"),
        },
        actor=actor,
    )
    return grant


def revoke_grant(account: Account, grant: SupportGrant, *, actor: str) -> SupportGrant:
    """Revoke at once (idempotent): the operator's next request in the account is refused."""
    if grant.revoked_at is None:
        db.session.execute(
            update(SupportGrant).where(SupportGrant.id == grant.id).values(revoked_at=utcnow())
        )
        db.session.refresh(grant)
        audit.record(
            account,
            action="grant.revoked",
            object_type="support_grant",
            object_id=grant.public_id,
            actor=actor,
        )
    return grant


def list_grants(account: Account) -> list[SupportGrant]:
    return list(
        db.session.scalars(
            for_account(SupportGrant, account).order_by(SupportGrant.created_at.desc())
        )
    )


def active_grants_for(operator: Operator) -> list[tuple[SupportGrant, Account]]:
    now = utcnow()
    return list(
        db.session.execute(
            select(SupportGrant, Account)
            .join(Account, Account.id == SupportGrant.account_id)
            .where(
                SupportGrant.operator_id == operator.id,
                SupportGrant.revoked_at.is_(None),
                SupportGrant.expires_at > now,
            )
            .order_by(SupportGrant.expires_at)
        ).all()
    )


def grant_uses(account: Account, grant: SupportGrant) -> int:
    """How often the operator entered or used the account under this grant (audited uses)."""
    return db.session.scalar(
        select(func.count()).where(
            AuditEvent.account_ref == str(account.public_id),
            AuditEvent.object_id == str(grant.public_id),
            AuditEvent.action.in_(("support.opened", "support.access")),
        )
    )
