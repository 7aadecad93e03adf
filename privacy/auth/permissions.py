"""The permission table, token and session authentication, and the decorators every view
declares: `requires` (API, bearer token), `page` (pages, browser session) and `public`."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import timedelta

from flask import g
from flask import redirect
from flask import request
from flask import url_for
from sqlalchemy import bindparam
from sqlalchemy import select
from sqlalchemy import update

from privacy.accounts.models import ROLES
from privacy.accounts.models import Account
from privacy.accounts.models import ApiToken
from privacy.crypto import token_hash
from privacy.database import begin_write
from privacy.database import utcnow
from privacy.errors import Forbidden
from privacy.errors import Unauthorized
from privacy.extensions import db

# permission -> (least role, API area a narrowed token must name, support-grant access that
# allows it: "read", "write", or None when support staff may never do it, even with a grant).
PERMISSIONS: dict[str, tuple[str, str, str | None]] = {
    "inventory:read": ("member", "inventory", "read"),
    "inventory:write": ("admin", "inventory", "write"),
    "members:read": ("member", "members", "read"),
    "members:write": ("admin", "members", None),
    "tokens:manage": ("admin", "tokens", None),
    "grants:manage": ("admin", "grants", None),
    "audit:read": ("admin", "audit", "read"),
    "requests:read": ("member", "requests", "read"),
    "requests:write": ("member", "requests", None),
    "requests:manage": ("admin", "requests", "write"),
    "scrub": ("member", "scrub", "read"),
    "scrub:reverse": ("admin", "scrub", None),
    "scrub:settings": ("admin", "scrub", "write"),
    "subprocessors:read": ("member", "subprocessors", "read"),
    "subprocessors:object": ("admin", "subprocessors", None),
}

PUBLIC = "public"
# Page-only declarations: any signed-in browser, platform operators only, and the DPO only.
SIGNED_IN = "signed_in"
OPERATOR = "operator"
# Operators whose role is "dpo": the platform's data protection officer (across accounts).
DPO = "dpo"
TOKEN_PATTERN = re.compile(r"^prv_[A-Za-z0-9_-]{20,100}$")
LAST_USED_GRANULARITY = timedelta(minutes=1)
# Built once: every API request runs it, and building a statement costs more than its SQL.
_TOKEN_QUERY = (
    select(ApiToken, Account)
    .join(Account, Account.id == ApiToken.account_id)
    .where(ApiToken.token_hash == bindparam("token_hash"))
)


def _bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not TOKEN_PATTERN.match(value.strip()):
        raise Unauthorized()
    return value.strip()


def authenticate() -> ApiToken:
    """Resolve the bearer token to a live ApiToken and set g.account, g.token, g.actor."""
    row = db.session.execute(_TOKEN_QUERY, {"token_hash": token_hash(_bearer_token())}).first()
    now = utcnow()
    if row is None:
        raise Unauthorized()
    token, account = row
    if token.revoked_at is not None or (token.expires_at is not None and token.expires_at <= now):
        raise Unauthorized()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_GRANULARITY:
        # Committed at once: read-only requests never commit otherwise. At most once a
        # minute per token, so the reload of the expired objects afterwards costs little.
        begin_write()
        db.session.execute(update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=now))
        db.session.commit()
    g.token = token
    g.account = account
    g.actor = f"token:{token.public_id}"
    return token


def check(token: ApiToken, permission: str) -> None:
    role, scope, _grant = PERMISSIONS[permission]
    if ROLES.index(token.role) < ROLES.index(role):
        raise Forbidden(f"This needs the {role} role.")
    if token.scopes is not None and scope not in token.scopes:
        raise Forbidden(f"This token lacks the {scope!r} scope.")


def requires(permission: str) -> Callable:
    """Declare and enforce a view's permission: 401 without a valid token, 403 without rights."""
    if permission not in PERMISSIONS:
        raise KeyError(f"unknown permission {permission!r}")

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            check(authenticate(), permission)
            return view(*args, **kwargs)

        wrapper.permission = permission
        return wrapper

    return decorate


def check_principal(principal, permission: str) -> None:
    """A browser session's rights: a member's role, or an operator's grant (each use audited)."""
    from privacy.audit import services as audit

    if permission == SIGNED_IN:
        return
    if permission == OPERATOR:
        if principal.operator is None:
            raise Forbidden("This page is for platform support staff.")
        return
    if permission == DPO:
        if principal.operator is None or principal.operator.role != "dpo":
            raise Forbidden("This page is for the platform's data protection officer.")
        return
    role, _scope, grant_access = PERMISSIONS[permission]
    if principal.member is not None:
        if ROLES.index(principal.member.role) < ROLES.index(role):
            raise Forbidden(f"This needs the {role} role.")
        return
    grant = principal.grant
    if grant is None:
        raise Forbidden("Open a customer account through a support grant first.")
    if grant_access is None or (grant_access == "write" and grant.access != "write"):
        raise Forbidden("Your support grant does not allow this.")
    begin_write()
    audit.record(
        principal.account,
        action="support.access",
        object_type="support_grant",
        object_id=grant.public_id,
        data={"permission": permission, "method": request.method, "page": request.endpoint},
        actor=principal.actor,
    )
    db.session.commit()


def page(permission: str) -> Callable:
    """Declare and enforce a page's permission: sign-in page without a session, 403 without
    rights."""
    if permission not in PERMISSIONS and permission not in (SIGNED_IN, OPERATOR, DPO):
        raise KeyError(f"unknown permission {permission!r}")

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            from privacy.auth import sessions

            principal = sessions.current()
            if principal is None:
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            check_principal(principal, permission)
            return view(*args, **kwargs)

        wrapper.permission = permission
        wrapper.page = True
        return wrapper

    return decorate


def public(view):
    """Declare a view open to anyone (health checks, public pages)."""
    view.permission = PUBLIC
    return view
