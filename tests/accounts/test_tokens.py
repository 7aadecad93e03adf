"""API tokens: 401 without a valid token, 403 without role or scope, revocation, last use."""

from __future__ import annotations

from datetime import timedelta

from privacy.accounts.models import ApiToken
from privacy.database import utcnow
from privacy.extensions import db
from tests.conftest import bearer


def test_missing_malformed_or_unknown_token_is_401(client, tenant):
    for headers in (
        {},
        {"Authorization": "Basic abc"},
        bearer("prv_" + "x" * 43),
        {"Authorization": "Bearer nonsense"},
    ):
        response = client.get("/api/v1/subjects", headers=headers)
        assert response.status_code == 401, headers
        assert response.json["code"] == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_member_token_reads_but_cannot_write(client, tenant):
    member = tenant.token_for("member")
    assert client.get("/api/v1/subjects", headers=member).status_code == 200
    response = client.post(
        "/api/v1/subjects", json={"name": "A", "email": "a@example.org"}, headers=member
    )
    assert response.status_code == 403
    assert client.get("/api/v1/tokens", headers=member).status_code == 403
    assert client.get("/api/v1/audit", headers=member).status_code == 403


def test_scoped_token_only_reaches_its_areas(client, tenant):
    scrub_only = tenant.token_for("admin", scopes=["scrub"])
    assert client.get("/api/v1/subjects", headers=scrub_only).status_code == 403
    inventory = tenant.token_for("admin", scopes=["inventory"])
    assert client.get("/api/v1/subjects", headers=inventory).status_code == 200
    assert client.get("/api/v1/tokens", headers=inventory).status_code == 403


def test_admin_creates_lists_and_revokes_tokens(client, tenant):
    created = client.post(
        "/api/v1/tokens",
        json={"name": "pipeline", "role": "member", "scopes": ["scrub"]},
        headers=tenant.headers,
    )
    assert created.status_code == 201, created.json
    secret = created.json["token"]
    assert secret.startswith("prv_")
    listed = client.get("/api/v1/tokens", headers=tenant.headers).json
    assert {t["name"] for t in listed} == {"first admin token", "pipeline"}
    assert all("token" not in t for t in listed)
    stored = db.session.scalars(db.select(ApiToken)).all()
    assert all(secret not in (t.token_hash, t.prefix) for t in stored)

    revoked = client.delete(f"/api/v1/tokens/{created.json['id']}", headers=tenant.headers)
    assert revoked.status_code == 200
    assert revoked.json["revoked_at"] is not None
    assert client.get("/api/v1/subjects", headers=bearer(secret)).status_code == 401


def test_expired_token_is_401(client, tenant):
    token = db.session.scalars(db.select(ApiToken)).one()
    token.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert client.get("/api/v1/subjects", headers=tenant.headers).status_code == 401


def test_last_used_time_is_recorded(client, tenant):
    assert db.session.scalars(db.select(ApiToken)).one().last_used_at is None
    client.get("/api/v1/subjects", headers=tenant.headers)
    db.session.expire_all()
    assert db.session.scalars(db.select(ApiToken)).one().last_used_at is not None


def test_token_create_validation(client, tenant):
    bad = client.post(
        "/api/v1/tokens",
        json={"name": "", "role": "owner", "scopes": ["root"], "extra": 1},
        headers=tenant.headers,
    )
    assert bad.status_code == 422
    fields = bad.json["errors"]["json"]
    assert {"name", "role", "scopes", "extra"} <= set(fields)
    past = client.post(
        "/api/v1/tokens",
        json={"name": "x", "expires_at": "2000-01-01T00:00:00Z"},
        headers=tenant.headers,
    )
    assert past.status_code == 422


def test_removing_a_member_revokes_their_tokens(client, tenant):
    other_admin = client.post(
        "/api/v1/members",
        json={"email": "second@acme.example", "role": "admin"},
        headers=tenant.headers,
    )
    assert other_admin.status_code == 201
    # The first admin's own token is bound to them; removing them kills it.
    removed = client.delete(f"/api/v1/members/{tenant.admin.public_id}", headers=tenant.headers)
    assert removed.status_code == 204
    assert client.get("/api/v1/subjects", headers=tenant.headers).status_code == 401


def test_last_admin_cannot_be_removed_or_demoted(client, tenant):
    url = f"/api/v1/members/{tenant.admin.public_id}"
    assert client.delete(url, headers=tenant.headers).status_code == 409
    assert client.patch(url, json={"role": "member"}, headers=tenant.headers).status_code == 409
    assert client.get(url, headers=tenant.headers).json["role"] == "admin"
