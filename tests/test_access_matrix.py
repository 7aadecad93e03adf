"""Every registered route x every kind of caller, checked against the permission table.

Callers: anonymous, a member, an admin, the admin of another account, an operator without a
grant, an operator with a read grant, an operator whose grant expired, the platform's DPO (an
operator with the dpo role, no grant), and a revoked token.
API routes take bearer tokens only; pages take browser sessions only.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta

import pytest

from privacy.accounts import services as accounts
from privacy.accounts.models import SCOPES
from privacy.auth.models import UserSession
from privacy.auth.permissions import DPO
from privacy.auth.permissions import OPERATOR
from privacy.auth.permissions import PERMISSIONS
from privacy.auth.permissions import PUBLIC
from privacy.auth.permissions import ROLES
from privacy.auth.permissions import SIGNED_IN
from privacy.crypto import token_hash
from privacy.database import utcnow
from privacy.extensions import db
from privacy.support import services as support
from tests.conftest import bearer
from tests.conftest import make_tenant

METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE")
CALLERS = (
    "anonymous",
    "member",
    "admin",
    "other_admin",
    "operator",
    "operator_with_grant",
    "operator_expired_grant",
    "operator_dpo",
    "revoked_token",
)
FRAMEWORK = {"static", "api-docs.openapi_json", "api-docs.openapi_swagger_ui"}


class World:
    """Two accounts, their people and tokens, and two operators with grants to the first."""

    def __init__(self, app) -> None:
        self.app = app
        self.home = make_tenant()
        self.away = make_tenant(name="Other Ltd", admin_email="boss@other.example")
        self.member = accounts.add_member(
            self.home.account, email="mia@acme.example", name="Mia", role="member", actor="t"
        )
        _, self.member_token = accounts.create_token(
            self.home.account, name="m", role="member", scopes=None, member=self.member, actor="t"
        )
        revoked, self.revoked_token = accounts.create_token(
            self.home.account, name="r", role="admin", scopes=None, actor="t"
        )
        accounts.revoke_token(self.home.account, revoked, actor="t")
        self.olga = support.create_operator(
            email="olga@ops.example", name="O", role="support", actor="t"
        )
        self.omar = support.create_operator(
            email="omar@ops.example", name="O", role="support", actor="t"
        )
        self.dora = support.create_operator(
            email="dora@ops.example", name="D", role="dpo", actor="t"
        )
        self.grant = support.create_grant(
            self.home.account,
            operator_email="olga@ops.example",
            access="read",
            expires_at=utcnow() + timedelta(hours=2),
            reason="ticket",
            actor="t",
        )
        self.stale = support.create_grant(
            self.home.account,
            operator_email="omar@ops.example",
            access="read",
            expires_at=utcnow() + timedelta(hours=2),
            reason="ticket",
            actor="t",
        )
        db.session.commit()
        self.stale.expires_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
        self.ids = {
            "member_id": str(self.member.public_id),
            "token_id": str(revoked.public_id),
            "grant_id": str(self.grant.public_id),
            "subject_id": str(uuid.uuid4()),
            "system_id": str(uuid.uuid4()),
            "account_id": str(self.home.account.public_id),
            "request_id": str(uuid.uuid4()),
            "instruction_id": str(uuid.uuid4()),
        }

    def session_for(self, *, member=None, operator=None, grant=None) -> str:
        secret = secrets.token_urlsafe(32)
        now = utcnow()
        db.session.add(
            UserSession(
                token_hash=token_hash(secret),
                member_id=member.id if member else None,
                operator_id=operator.id if operator else None,
                account_id=(member.account_id if member else grant.account_id if grant else None),
                grant_id=grant.id if grant else None,
                method="email",
                created_at=now,
                last_seen_at=now,
                expires_at=now + timedelta(hours=1),
            )
        )
        db.session.commit()
        return secret

    def client_for(self, caller: str):
        """(test client with the caller's cookie, headers with the caller's token)."""
        client = self.app.test_client()
        sessions = {
            "member": lambda: self.session_for(member=self.member),
            "admin": lambda: self.session_for(member=self.home.admin),
            "other_admin": lambda: self.session_for(member=self.away.admin),
            "operator": lambda: self.session_for(operator=self.olga),
            "operator_with_grant": lambda: self.session_for(operator=self.olga, grant=self.grant),
            "operator_expired_grant": lambda: self.session_for(
                operator=self.omar, grant=self.stale
            ),
            "operator_dpo": lambda: self.session_for(operator=self.dora),
        }
        tokens = {
            "member": self.member_token,
            "admin": self.home.token,
            "other_admin": self.away.token,
            "revoked_token": self.revoked_token,
        }
        if caller in sessions:
            secret = sessions[caller]()
            with client.session_transaction() as cookie:
                cookie["sid"] = secret
        headers = bearer(tokens[caller]) if caller in tokens else {}
        return client, headers


def routes(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint in FRAMEWORK:
            continue
        view = app.view_functions[rule.endpoint]
        for method in sorted(rule.methods & set(METHODS)):
            yield method, rule, view


SAMPLES = {
    "token": "not-a-real-link",
    "filename": "swagger-ui.css",
    "secret": "not-a-real-link",
    "name": "access.json",
    "subject_request_id": "8a3a1b56-3c1e-4d2e-9a55-0d3a5e8f2c11",
}


def url_of(rule, ids: dict) -> str:
    url = rule.rule
    for arg in rule.arguments:
        value = ids.get(arg) or SAMPLES[arg]
        for converter in ("uuid:", "path:", ""):
            url = url.replace(f"<{converter}{arg}>", value)
    return url


def expected(view, caller: str) -> str:
    """'allowed', 'login' (sent to the sign-in page), or the status of the refusal."""
    permission = view.permission
    if permission == PUBLIC:
        return "public"
    is_page = getattr(view, "page", False)
    token_caller = caller in ("member", "admin", "other_admin", "revoked_token")
    if not is_page:
        if caller == "revoked_token" or not token_caller:
            return "401"
        role = PERMISSIONS[permission][0]
        person_role = "member" if caller == "member" else "admin"
        return "allowed" if ROLES.index(person_role) >= ROLES.index(role) else "403"
    if caller in ("anonymous", "revoked_token"):
        return "login"
    operator = caller.startswith("operator")
    if permission == SIGNED_IN:
        return "allowed"
    if permission == OPERATOR:
        return "allowed" if operator else "403"
    if permission == DPO:
        return "allowed" if caller == "operator_dpo" else "403"
    role, _scope, grant_access = PERMISSIONS[permission]
    if not operator:
        person_role = "member" if caller == "member" else "admin"
        return "allowed" if ROLES.index(person_role) >= ROLES.index(role) else "403"
    if caller == "operator_with_grant" and grant_access == "read":
        return "allowed"
    return "403"


def check(response, outcome: str, where) -> None:
    status = response.status_code
    if outcome == "public":  # may still send a stranger to the sign-in page ("/")
        assert status not in (401, 403) and status < 500, where
    elif outcome == "allowed":
        assert status not in (401, 403), where
        assert not (status == 302 and "/auth/login" in response.headers["Location"]), where
        assert status < 500, where
    elif outcome == "login":
        assert status == 302 and response.headers["Location"].startswith("/auth/login"), where
    else:
        assert status == int(outcome), (where, status, response.get_data(as_text=True)[:300])


@pytest.mark.parametrize("caller", CALLERS)
def test_every_route_answers_each_caller_as_the_permission_table_says(app, caller, monkeypatch):
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", False)  # CSRF has its own tests
    world = World(app)
    checked = 0
    for method, rule, view in routes(app):
        client, headers = world.client_for(caller)  # a fresh caller: writes may end sessions
        url = url_of(rule, world.ids)
        body = {"json": {}} if not getattr(view, "page", False) and method != "GET" else {}
        response = client.open(url, method=method, headers=headers, **body)
        check(response, expected(view, caller), (caller, method, rule.rule))
        checked += 1
    assert checked >= 40


def test_every_route_declares_a_known_permission(app):
    known = set(PERMISSIONS) | {PUBLIC, SIGNED_IN, OPERATOR, DPO}
    for _method, rule, view in routes(app):
        assert getattr(view, "permission", None) in known, rule.rule


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("role", ROLES)
def test_every_api_route_answers_a_narrowed_token_as_the_table_says(app, role, scope, monkeypatch):
    """A token narrowed to one API area reaches that area's routes (as its role allows) and
    no other: OpenDSR's routes included."""
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", False)
    world = World(app)
    member = world.home.admin if role == "admin" else world.member
    checked = 0
    for method, rule, view in routes(app):
        if getattr(view, "page", False) or view.permission == PUBLIC:
            continue
        _, secret = accounts.create_token(
            world.home.account, name="n", role=role, scopes=[scope], member=member, actor="t"
        )
        db.session.commit()
        least, area, _grant = PERMISSIONS[view.permission]
        allowed = area == scope and ROLES.index(role) >= ROLES.index(least)
        response = app.test_client().open(
            url_of(rule, world.ids), method=method, headers=bearer(secret), json={}
        )
        where = (role, scope, method, rule.rule)
        if allowed and getattr(view, "hands_on", False):
            # Handing authority on needs all of it: a narrowed token may be refused there.
            assert response.status_code < 500 and response.status_code != 401, where
        else:
            check(response, "allowed" if allowed else "403", where)
        checked += 1
    assert checked >= 40
