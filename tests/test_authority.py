"""The authority rule: what a caller hands on (tokens, members, roles, support grants) is a
subset of what it holds, and a read token cannot erase or withdraw a person's own request."""

from __future__ import annotations

import uuid
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from sqlalchemy import select

from privacy import database
from privacy.accounts import services as accounts
from privacy.accounts.models import ApiToken
from privacy.accounts.models import Member
from privacy.auth.permissions import Authority
from privacy.database import utcnow
from privacy.dsr import services as dsr
from privacy.dsr import signing
from privacy.dsr.models import DataSubjectRequest
from privacy.extensions import db
from privacy.inventory import services as inventory
from privacy.support import services as support
from privacy.support.models import SupportGrant
from tests.conftest import bearer


def member_token(tenant, *, role="admin", scopes=None, expires_at=None, member=None) -> dict:
    """A token of the tenant's admin (or `member`), as minted on the tokens page."""
    _, secret = accounts.create_token(
        tenant.account,
        name="narrow",
        role=role,
        scopes=scopes,
        expires_at=expires_at,
        member=member or tenant.admin,
        actor="test",
    )
    db.session.commit()
    return bearer(secret)


def count(model) -> int:
    return len(db.session.scalars(select(model)).all())


# -- tokens ------------------------------------------------------------------------------


def test_a_token_scoped_to_tokens_cannot_mint_a_wider_token(client, tenant):
    narrow = member_token(tenant, scopes=["tokens"])
    before = count(ApiToken)
    for body in (
        {"name": "x", "role": "admin"},  # no scopes: every area
        {"name": "x", "role": "admin", "scopes": ["tokens", "inventory"]},
        {"name": "x", "role": "member", "scopes": ["audit"]},
    ):
        refused = client.post("/api/v1/tokens", json=body, headers=narrow)
        assert refused.status_code == 403, body
        assert refused.json["code"] == 403 and "message" in refused.json
    assert count(ApiToken) == before

    within = client.post(
        "/api/v1/tokens", json={"name": "x", "role": "member", "scopes": ["tokens"]}, headers=narrow
    )
    assert within.status_code == 201


def test_a_member_token_cannot_mint_an_admin_token(client, tenant):
    mia = accounts.add_member(
        tenant.account, email="mia@acme.example", name="Mia", role="member", actor="t"
    )
    db.session.commit()
    # A member's token cannot reach tokens:manage at all; the role check comes first.
    headers = member_token(tenant, role="member", member=mia)
    assert client.post("/api/v1/tokens", json={"name": "x"}, headers=headers).status_code == 403


def test_an_expiring_token_mints_only_tokens_that_end_no_later(client, tenant):
    ends = utcnow() + timedelta(days=1)
    short = member_token(tenant, expires_at=ends)
    forever = client.post("/api/v1/tokens", json={"name": "x", "role": "admin"}, headers=short)
    assert forever.status_code == 403
    later = (ends + timedelta(hours=1)).isoformat()
    too_late = client.post(
        "/api/v1/tokens", json={"name": "x", "role": "admin", "expires_at": later}, headers=short
    )
    assert too_late.status_code == 403
    sooner = (ends - timedelta(hours=1)).isoformat()
    ok = client.post(
        "/api/v1/tokens", json={"name": "x", "role": "admin", "expires_at": sooner}, headers=short
    )
    assert ok.status_code == 201


def test_a_minted_token_belongs_to_its_minter_and_dies_with_their_membership(client, tenant):
    second = accounts.add_member(
        tenant.account, email="bo@acme.example", name="Bo", role="admin", actor="t"
    )
    db.session.commit()
    bos = member_token(tenant, member=second)
    minted = client.post("/api/v1/tokens", json={"name": "x", "role": "admin"}, headers=bos)
    assert minted.status_code == 201
    token = db.session.scalar(
        select(ApiToken).where(ApiToken.public_id == uuid.UUID(minted.json["id"]))
    )
    assert token.member_id == second.id
    minted_headers = bearer(minted.json["token"])
    assert client.get("/api/v1/tokens", headers=minted_headers).status_code == 200

    # Demoted: the admin tokens go; removed: every token goes.
    demoted = client.patch(
        f"/api/v1/members/{second.public_id}", json={"role": "member"}, headers=tenant.headers
    )
    assert demoted.status_code == 200
    assert client.get("/api/v1/tokens", headers=minted_headers).status_code == 401


def test_a_removed_admins_minted_tokens_stop_working(client, tenant):
    second = accounts.add_member(
        tenant.account, email="bo@acme.example", name="Bo", role="admin", actor="t"
    )
    db.session.commit()
    minted = client.post(
        "/api/v1/tokens",
        json={"name": "x", "role": "member", "scopes": ["inventory"]},
        headers=member_token(tenant, member=second),
    )
    headers = bearer(minted.json["token"])
    assert client.get("/api/v1/subjects", headers=headers).status_code == 200
    removed = client.delete(f"/api/v1/members/{second.public_id}", headers=tenant.headers)
    assert removed.status_code == 204
    assert client.get("/api/v1/subjects", headers=headers).status_code == 401


def test_a_token_of_no_member_cannot_mint(client, tenant):
    orphan = tenant.token_for("admin")  # as tokens were minted before they had a member
    refused = client.post("/api/v1/tokens", json={"name": "x", "role": "member"}, headers=orphan)
    assert refused.status_code == 403
    assert "no member" in refused.json["message"]


def test_a_tokens_role_never_exceeds_its_members_role_today():
    token = ApiToken(role="admin", scopes=None, expires_at=None, member_id=7)
    assert Authority.of_token(token, "member").role == "member"
    assert Authority.of_token(token, "admin").role == "admin"
    assert Authority.of_token(token, None).role == "admin"


# -- members -----------------------------------------------------------------------------


def test_a_token_scoped_to_members_cannot_invite_or_promote(client, tenant, queue):
    narrow = member_token(tenant, scopes=["members"])
    before = count(Member)
    for role in ("admin", "member"):
        invite = {"email": f"{role}@elsewhere.example", "role": role}
        refused = client.post("/api/v1/members", json=invite, headers=narrow)
        assert refused.status_code == 403, role
    assert count(Member) == before
    assert queue.names() == []  # no invitation mail either

    mia = accounts.add_member(
        tenant.account, email="mia@acme.example", name="Mia", role="member", actor="t"
    )
    db.session.commit()
    promote = client.patch(
        f"/api/v1/members/{mia.public_id}", json={"role": "admin"}, headers=narrow
    )
    assert promote.status_code == 403
    db.session.refresh(mia)
    assert mia.role == "member"
    # Taking away is not handing on: a narrowed token may still remove.
    assert client.delete(f"/api/v1/members/{mia.public_id}", headers=narrow).status_code == 204


def test_a_token_scoped_to_members_cannot_resend_an_admins_invitation(client, tenant):
    invited = client.post(
        "/api/v1/members",
        json={"email": "new@acme.example", "role": "admin"},
        headers=tenant.headers,
    )
    assert invited.status_code == 201
    narrow = member_token(tenant, scopes=["members"])
    resend = client.post(f"/api/v1/members/{invited.json['id']}/invitation", headers=narrow)
    assert resend.status_code == 403


def test_an_expiring_token_cannot_add_members_who_never_expire(client, tenant):
    short = member_token(tenant, expires_at=utcnow() + timedelta(hours=1))
    refused = client.post(
        "/api/v1/members", json={"email": "new@acme.example", "role": "member"}, headers=short
    )
    assert refused.status_code == 403
    allowed = client.post(
        "/api/v1/members",
        json={"email": "new@acme.example", "role": "admin"},
        headers=tenant.headers,
    )
    assert allowed.status_code == 201


# -- support grants ----------------------------------------------------------------------


@pytest.fixture
def operator(app):
    made = support.create_operator(email="olga@ops.example", name="Olga", role="support", actor="t")
    db.session.commit()
    return made


@pytest.mark.parametrize("access", ["read", "write"])
def test_a_token_scoped_to_grants_cannot_let_support_staff_in(client, tenant, operator, access):
    narrow = member_token(tenant, scopes=["grants"])
    grant = {"operator_email": "olga@ops.example", "access": access, "hours": 72, "reason": "t-1"}
    refused = client.post("/api/v1/support-grants", json=grant, headers=narrow)
    assert refused.status_code == 403
    assert count(SupportGrant) == 0
    assert client.post(
        "/api/v1/support-grants", json=grant, headers=tenant.headers
    ).status_code == (201)


def test_a_grant_never_outlasts_the_token_that_gives_it(client, tenant, operator):
    short = member_token(tenant, expires_at=utcnow() + timedelta(hours=2))
    grant = {"operator_email": "olga@ops.example", "access": "read", "hours": 3, "reason": "t-1"}
    assert client.post("/api/v1/support-grants", json=grant, headers=short).status_code == 403
    grant["hours"] = 1
    assert client.post("/api/v1/support-grants", json=grant, headers=short).status_code == 201


def test_a_write_grant_needs_every_write_permission_it_hands_on(tenant, operator):
    reader = Authority("admin", frozenset({"grants", "inventory", "members", "audit"}))
    with pytest.raises(Exception) as refused:
        support.create_grant(
            tenant.account,
            operator_email="olga@ops.example",
            access="write",
            expires_at=utcnow() + timedelta(hours=1),
            reason="t",
            actor="t",
            granter=reader,
        )
    assert refused.value.code == 403
    assert "requests:manage" in refused.value.description


# -- OpenDSR -----------------------------------------------------------------------------


def opendsr_body(kind: str, **extra) -> dict:
    return {
        "regulation": "gdpr",
        "subject_request_id": str(uuid.uuid4()),
        "subject_request_type": kind,
        "submitted_time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "subject_identities": [
            {
                "identity_type": "email",
                "identity_value": "ana@example.org",
                "identity_format": "raw",
            }
        ],
        **extra,
    }


def verified(response) -> bool:
    certificate = signing.get().certificate_pem
    return signing.verify(certificate, response.get_data(), response.headers["X-OpenDSR-Signature"])


def test_a_member_token_cannot_erase_through_opendsr(client, tenant, queue):
    inventory.create_subject(tenant.account, name="Ana", email="ana@example.org", actor="t")
    db.session.commit()
    reader = tenant.token_for("member")
    refused = client.post("/opendsr/v1/requests", json=opendsr_body("erasure"), headers=reader)
    assert refused.status_code == 403 and verified(refused)
    assert refused.json["error"]["code"] == 403
    assert dsr.list_requests(tenant.account) == []
    assert queue.names() == []
    # The same token may still ask for access; an admin token may erase.
    taken = client.post("/opendsr/v1/requests", json=opendsr_body("access"), headers=reader)
    assert taken.status_code == 201
    erasure = client.post(
        "/opendsr/v1/requests", json=opendsr_body("erasure"), headers=tenant.headers
    )
    assert erasure.status_code == 201
    scoped_admin = tenant.token_for("admin", scopes=["inventory"])
    assert (
        client.post(
            "/opendsr/v1/requests", json=opendsr_body("erasure"), headers=scoped_admin
        ).status_code
        == 403
    )


def test_a_member_token_cannot_withdraw_a_persons_own_request(client, tenant, queue):
    own = dsr.submit(
        tenant.account,
        kind="access",
        source="form",
        email="ana@example.org",
        verified="email link",
        subject_request_id=uuid.uuid4(),
        actor="t",
    )
    db.session.commit()
    path = f"/opendsr/v1/requests/{own.subject_request_id}"
    refused = client.delete(path, headers=tenant.token_for("member"))
    assert refused.status_code == 403 and verified(refused)
    db.session.refresh(own)
    assert own.status == "verified"  # untouched
    assert client.delete(path, headers=tenant.headers).status_code == 202


def test_an_unexpected_failure_in_opendsr_is_a_signed_json_500(app, client, tenant, monkeypatch):
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)  # as in production

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(dsr, "submit", broken)
    response = client.post(
        "/opendsr/v1/requests", json=opendsr_body("access"), headers=tenant.headers
    )
    assert response.status_code == 500
    assert response.mimetype == "application/json" and verified(response)
    assert response.json["error"]["code"] == 500
    assert "boom" not in response.get_data(as_text=True)
    assert db.session.scalars(select(DataSubjectRequest)).all() == []


# -- names that reach mail headers -------------------------------------------------------


@pytest.mark.parametrize("name", ["Acme\r\nBcc: x@evil.example", "Acme\x00", "Acme\u2028Ltd", ""])
def test_an_account_name_with_control_characters_is_refused(app, name):
    from privacy.accounts.models import Account
    from privacy.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as refused:
        accounts.create_account(
            name=name, region="eu", admin_email="a@b.example", admin_name=None, actor="t"
        )
    assert refused.value.code == 422 and "name" in refused.value.data["errors"]
    db.session.rollback()
    assert db.session.scalars(select(Account)).all() == []


# -- tokens minted before tokens had owners -----------------------------------------------


def test_the_migration_gives_ownerless_tokens_the_member_who_minted_them(app, tmp_path):
    from flask_migrate import upgrade

    from privacy import create_app
    from tests.conftest import app_config

    scratch = create_app(app_config(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'm.db'}"))
    database.init_migrations(scratch)
    with scratch.app_context():
        upgrade(revision="b12a0a11a001")  # before
        account, admin, _ = accounts.create_account(
            name="Acme", region="eu", admin_email="a@acme.example", admin_name=None, actor="t"
        )
        first = db.session.scalar(select(ApiToken).where(ApiToken.member_id == admin.id))
        # As the API minted them then: no member; the audit log names the minting token.
        minted, _ = accounts.create_token(
            account, name="m", role="admin", scopes=None, actor=f"token:{first.public_id}"
        )
        grandchild, _ = accounts.create_token(
            account, name="g", role="member", scopes=None, actor=f"token:{minted.public_id}"
        )
        by_session, _ = accounts.create_token(
            account, name="s", role="member", scopes=None, actor=f"member:{admin.public_id}"
        )
        unknown, _ = accounts.create_token(
            account, name="u", role="member", scopes=None, actor="cli"
        )
        db.session.commit()
        ids = [t.id for t in (minted, grandchild, by_session, unknown)]
        admin_id = admin.id
        db.session.remove()  # its read snapshot would hide what the migration writes

        upgrade()

        owners = {
            token.id: token.member_id
            for token in db.session.scalars(select(ApiToken).where(ApiToken.id.in_(ids)))
        }
        assert [owners[i] for i in ids] == [admin_id, admin_id, admin_id, None]
        db.session.remove()


def test_a_busy_database_answers_opendsr_with_a_signed_503(app, client, tenant, monkeypatch):
    from sqlalchemy.exc import OperationalError

    def busy(*args, **kwargs):
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr(dsr, "submit", busy)
    response = client.post(
        "/opendsr/v1/requests", json=opendsr_body("access"), headers=tenant.headers
    )
    assert response.status_code == 503 and verified(response)
    assert response.json["error"]["code"] == 503
    assert response.headers["Retry-After"] == "2"
