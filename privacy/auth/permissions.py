"""The permission table, token and session authentication, the caller's authority, and the
decorators every view declares: `requires` (API, bearer token), `page` (pages, browser
session) and `public`.

The authority rule: what a caller hands on (a token, a member, a role, a support grant) is
always a subset of what it holds itself: no higher role, no API area it lacks, no end later
than its own. `Authority.check_grant` and `Authority.check_all` enforce it in the services.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
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
from privacy.accounts.models import Member
from privacy.audit import services as audit
from privacy.auth import sessions
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
    # An erasure through OpenDSR deletes like `DELETE /subjects/{id}`: admins only.
    "requests:erase": ("admin", "requests", None),
    "requests:manage": ("admin", "requests", "write"),
    "scrub": ("member", "scrub", "read"),
    "scrub:reverse": ("admin", "scrub", None),
    "scrub:settings": ("admin", "scrub", "write"),
    "subprocessors:read": ("member", "subprocessors", "read"),
    "subprocessors:object": ("admin", "subprocessors", None),
}


def support_permissions(access: str) -> list[str]:
    """What a support grant with this access lets an operator do in the account."""
    allowed = {"read": {"read"}, "write": {"read", "write"}}.get(access, set())
    return [name for name, (_role, _scope, grant) in PERMISSIONS.items() if grant in allowed]


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
    select(ApiToken, Account, Member.role)
    .join(Account, Account.id == ApiToken.account_id)
    .outerjoin(Member, Member.id == ApiToken.member_id)
    .where(ApiToken.token_hash == bindparam("token_hash"))
)


def _lower(role: str, other: str) -> str:
    return role if ROLES.index(role) <= ROLES.index(other) else other


@dataclass(frozen=True)
class Authority:
    """What a caller holds: a role, the API areas (None: every area the role allows), when
    it ends (None: never) and the member it acts for (None: nobody, e.g. an old token)."""

    role: str
    scopes: frozenset[str] | None = None
    expires_at: datetime | None = None
    member_id: int | None = None

    @classmethod
    def of_token(cls, token: ApiToken, member_role: str | None = None) -> Authority:
        """A token holds its own role, never more than its member's role today."""
        role = token.role if member_role is None else _lower(token.role, member_role)
        scopes = None if token.scopes is None else frozenset(token.scopes)
        return cls(role, scopes, token.expires_at, token.member_id)

    @classmethod
    def of_member(cls, member: Member) -> Authority:
        """A signed-in member holds their role in every area; a member does not expire."""
        return cls(member.role, None, None, member.id)

    def allows(self, permission: str) -> bool:
        role, scope, _grant = PERMISSIONS[permission]
        return ROLES.index(self.role) >= ROLES.index(role) and (
            self.scopes is None or scope in self.scopes
        )

    def check(self, permission: str) -> None:
        """403 unless this caller holds the permission."""
        role, scope, _grant = PERMISSIONS[permission]
        if ROLES.index(self.role) < ROLES.index(role):
            raise Forbidden(f"This needs the {role} role.")
        if self.scopes is not None and scope not in self.scopes:
            raise Forbidden(f"This token lacks the {scope!r} scope.")

    def check_all(self, permissions: Iterable[str], *, what: str) -> None:
        """403 unless this caller holds every permission `what` would hand on."""
        missing = sorted(p for p in permissions if not self.allows(p))
        if missing:
            raise Forbidden(
                f"You cannot hand on more than you hold: {what} allows {', '.join(missing)}."
            )

    def check_grant(
        self, *, role: str, scopes: Iterable[str] | None, expires_at: datetime | None, what: str
    ) -> None:
        """403 unless `what` (a role, the API areas, None for all, and an end, None for
        never) lies within this caller's own authority."""
        if role in ROLES and ROLES.index(role) > ROLES.index(self.role):
            raise Forbidden(
                f"You hold the {self.role} role, so {what} cannot have the {role} role."
            )
        if self.scopes is not None:
            if scopes is None:
                raise Forbidden(
                    f"This token is narrowed to {', '.join(sorted(self.scopes))}, so {what} "
                    "cannot cover every area: name scopes within those."
                )
            extra = sorted(set(scopes) - self.scopes)
            if extra:
                raise Forbidden(
                    f"This token lacks {', '.join(extra)}, so {what} cannot have "
                    f"{'it' if len(extra) == 1 else 'them'}."
                )
        self.check_end(expires_at, what=what)

    def check_end(self, expires_at: datetime | None, *, what: str) -> None:
        """403 unless `what`, ending at `expires_at` (None: never), ends no later than this
        caller's own authority."""
        if self.expires_at is not None and (expires_at is None or expires_at > self.expires_at):
            end = self.expires_at.isoformat(timespec="seconds")
            raise Forbidden(f"This token ends at {end}, so {what} must end no later.")


def _bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not TOKEN_PATTERN.match(value.strip()):
        raise Unauthorized()
    return value.strip()


def authenticate() -> ApiToken:
    """Resolve the bearer token to a live ApiToken and set g.account, g.token, g.actor.

    The token's last use is written with `begin_write`, not `@writes`: this runs during the
    authentication of every API call, GETs included, and writes at most once a minute."""
    row = db.session.execute(_TOKEN_QUERY, {"token_hash": token_hash(_bearer_token())}).first()
    now = utcnow()
    if row is None:
        raise Unauthorized()
    token, account, member_role = row
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
    g.authority = Authority.of_token(token, member_role)
    return token


def check(token: ApiToken, permission: str) -> None:
    """403 unless the token holds the permission (its member's role caps its own)."""
    authority = g.get("authority")
    if authority is None or g.get("token") is not token:
        authority = Authority.of_token(token)
    authority.check(permission)


def requires(permission: str, *, hands_on: bool = False) -> Callable:
    """Declare and enforce a view's permission: 401 without a valid token, 403 without rights.

    `hands_on` declares a view that hands authority on (a token, a member's role, a support
    grant): its service also refuses (403) whatever exceeds the caller's own authority."""
    if permission not in PERMISSIONS:
        raise KeyError(f"unknown permission {permission!r}")

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            check(authenticate(), permission)
            return view(*args, **kwargs)

        wrapper.permission = permission
        wrapper.hands_on = hands_on
        return wrapper

    return decorate


def check_principal(principal, permission: str) -> None:
    """A browser session's rights: a member's role, or an operator's grant (each use audited).

    The use of a grant is recorded with `begin_write`, not `@writes`: this runs during the
    authentication of every page, GETs included."""
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
            principal = sessions.current()
            if principal is None:
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            check_principal(principal, permission)
            # Only members hand anything on; support staff never may (see PERMISSIONS).
            member = principal.member
            g.authority = Authority.of_member(member) if member is not None else None
            return view(*args, **kwargs)

        wrapper.permission = permission
        wrapper.page = True
        return wrapper

    return decorate


def public(view):
    """Declare a view open to anyone (health checks, public pages); the API document then
    asks no token for it (flask-smorest reads `_apidoc` when the blueprint registers)."""
    view.permission = PUBLIC
    apidoc = dict(getattr(view, "_apidoc", {}))
    apidoc["manual_doc"] = {**apidoc.get("manual_doc", {}), "security": []}
    view._apidoc = apidoc
    return view
