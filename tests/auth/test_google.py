"""Sign in with Google, end to end against a real OpenID Connect provider on loopback.

The browser is the Flask test client; its trip to the provider's authorization endpoint is a
real HTTP request, and the service talks to the provider (discovery, keys, token) over HTTP.
"""

from __future__ import annotations

import logging
import re
import socket
import uuid
from datetime import timedelta
from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urlsplit

import pytest
import requests
from flask import g
from sqlalchemy import select

from privacy.accounts.models import Member
from privacy.auth.models import UserSession
from privacy.database import utcnow
from privacy.extensions import db
from tests.helpers import free_port
from tests.oidc_provider import Login
from tests.oidc_provider import OIDCProvider

CLIENT_ID = "privacy-test-client"
CLIENT_SECRET = "GOCSPX-test-secret-1234567890"
BASE_URL = "https://privacy.example"  # not the test client's host: the URI comes from config
REDIRECT_URI = f"{BASE_URL}/auth/google/callback"
ADMIN = "admin@acme.example"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@pytest.fixture(scope="module")
def provider():
    with OIDCProvider(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI]) as running:
        yield running


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch):
    """Nothing in these tests may leave the machine (accounts.google.com included)."""
    connect = socket.socket.connect

    def guarded(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in LOOPBACK:
            raise AssertionError(f"network access outside loopback: {address[0]}")
        return connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


def configure(app, monkeypatch, issuer: str) -> None:
    monkeypatch.setitem(app.config, "OIDC_ISSUER", issuer)
    monkeypatch.setitem(app.config, "OIDC_CLIENT_ID", CLIENT_ID)
    monkeypatch.setitem(app.config, "OIDC_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setitem(app.config, "BASE_URL", BASE_URL)


@pytest.fixture
def google(app, provider, monkeypatch, caplog):
    provider.reset()
    configure(app, monkeypatch, provider.issuer)
    caplog.set_level(logging.DEBUG)
    return provider


# -- the browser ----------------------------------------------------------------------


def request(client, method: str, path: str, **kwargs):
    # The test holds one app context across requests; a server starts each with an empty g
    # (Flask-WTF keeps the CSRF token there).
    for key in list(g):
        g.pop(key)
    return client.open(path, method=method, **kwargs)


def start(client, next_url: str = ""):
    """The sign-in page's Google button: a CSRF-checked POST that redirects to the provider."""
    page = request(client, "GET", "/auth/login")
    assert "Sign in with Google" in page.get_data(as_text=True)
    token = CSRF.search(page.get_data(as_text=True)).group(1)
    return request(client, "POST", "/auth/google", data={"csrf_token": token, "next": next_url})


def at_provider(location: str) -> str:
    """What the browser does at the provider: a real HTTP GET; returns the callback URL."""
    answer = requests.get(location, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def back_at_service(client, callback_url: str):
    parts = urlsplit(callback_url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == REDIRECT_URI
    return request(client, "GET", f"{parts.path}?{parts.query}")


def sign_in(client, provider, next_url: str = ""):
    started = start(client, next_url)
    assert started.status_code == 303, started.get_data(as_text=True)
    assert started.headers["Location"].startswith(f"{provider.issuer}/authorize?")
    return back_at_service(client, at_provider(started.headers["Location"]))


def signed_in(client) -> bool:
    return request(client, "GET", "/members").status_code == 200


def assert_refused(response, status: int, provider, caplog, *emails: str) -> str:
    """A clear HTML page with `status`, no stack trace; no e-mail or token in the logs."""
    body = response.get_data(as_text=True)
    assert response.status_code == status, body
    assert response.mimetype == "text/html"
    assert "Traceback" not in body and "Error:" not in body
    assert "Sign in" in body or "sign-in" in body
    assert_nothing_secret_logged(provider, caplog, *emails)
    return body


def assert_nothing_secret_logged(provider, caplog, *emails: str) -> None:
    verifiers = [r["code_verifier"] for r in provider.token_requests if r["code_verifier"]]
    logged = caplog.text
    for secret in (*emails, ADMIN, *provider.issued, *verifiers):
        assert secret not in logged


def invite(client, tenant, email: str) -> Member:
    """An admin invites `email` through the API (the invitation mail goes to the outbox)."""
    response = request(
        client, "POST", "/api/v1/members", json={"email": email}, headers=tenant.headers
    )
    assert response.status_code == 201, response.get_json()
    return db.session.scalar(
        select(Member).where(Member.public_id == uuid.UUID(response.json["id"]))
    )


def sessions() -> list[UserSession]:
    return list(db.session.scalars(select(UserSession)))


# -- signing in -------------------------------------------------------------------------


def test_member_signs_in_with_google_and_lands_on_members(tenant, client, google, caplog):
    assert request(client, "GET", "/members").status_code == 302

    landed = sign_in(client, google)

    assert landed.status_code == 303 and landed.headers["Location"] == "/members"
    page = request(client, "GET", "/members")
    assert page.status_code == 200 and "Acme GmbH" in page.get_data(as_text=True)
    (session,) = sessions()
    assert session.method == "google" and session.member_id == tenant.admin.id
    (authorization,) = google.authorizations
    assert authorization["redirect_uri"] == REDIRECT_URI
    assert authorization["scope"].split() == ["openid", "email", "profile"]
    assert authorization["code_challenge_method"] == "S256"
    assert authorization["state"] and authorization["nonce"]
    assert_nothing_secret_logged(google, caplog)


def test_pkce_verifier_is_sent_and_checked_by_the_provider(tenant, client, google):
    assert sign_in(client, google).status_code == 303

    (exchange,) = google.token_requests
    assert exchange["pkce"] == "verified" and exchange["answer"] == "token"
    assert len(exchange["code_verifier"]) >= 43  # RFC 7636: 43 to 128 characters
    assert exchange["client_auth"] == "basic"
    assert exchange["redirect_uri"] == REDIRECT_URI


def test_wrong_pkce_verifier_is_refused_by_the_provider(tenant, client, google, caplog):
    started = start(client)
    callback = at_provider(started.headers["Location"])
    with client.session_transaction() as cookie:
        (key,) = [k for k in cookie if k.startswith("_state_")]
        entry = cookie[key]
        entry["data"]["code_verifier"] = "x" * 64
        cookie[key] = entry

    response = back_at_service(client, callback)

    assert_refused(response, 400, google, caplog)
    (exchange,) = google.token_requests
    assert exchange["pkce"] == "mismatch" and exchange["answer"] == "invalid_grant"
    assert not signed_in(client)
    assert "invalid_grant" in caplog.text


def test_next_saved_at_start_is_where_the_sign_in_continues(tenant, client, google):
    assert sign_in(client, google, next_url="/tokens").headers["Location"] == "/tokens"


def test_next_to_another_host_is_ignored(tenant, client, google):
    landed = sign_in(client, google, next_url="https://evil.example/members")
    assert landed.headers["Location"] == "/members"


def test_invited_member_gets_in_and_joins(tenant, client, google):
    member = invite(client, tenant, "new@acme.example")
    assert member.invited_at is not None and member.joined_at is None
    google.login = Login(email="new@acme.example", sub="google-user-2")

    landed = sign_in(client, google)

    assert landed.status_code == 303 and landed.headers["Location"] == "/members"
    assert signed_in(client)
    db.session.expire_all()
    assert db.session.get(Member, member.id).joined_at is not None


def test_expired_invitation_gets_the_not_allowed_page(tenant, client, google, caplog):
    member = invite(client, tenant, "late@acme.example")
    member.invited_at = utcnow() - timedelta(days=30)
    db.session.commit()
    google.login = Login(email="late@acme.example")

    response = sign_in(client, google)

    body = assert_refused(response, 403, google, caplog, "late@acme.example")
    assert "no open invitation" in body
    assert not signed_in(client)


def test_google_email_is_matched_case_insensitively(tenant, client, google):
    google.login = Login(email="Admin@ACME.example")
    assert sign_in(client, google).headers["Location"] == "/members"


# -- refusals -----------------------------------------------------------------------


def test_unknown_verified_email_gets_the_not_allowed_page(tenant, client, google, caplog):
    google.login = Login(email="stranger@elsewhere.example")

    response = sign_in(client, google)

    body = assert_refused(response, 403, google, caplog, "stranger@elsewhere.example")
    assert "not a member of any account here" in body
    assert not signed_in(client) and sessions() == []


def test_unverified_email_is_refused(tenant, client, google, caplog):
    google.login = Login(email_verified=False)

    response = sign_in(client, google)

    body = assert_refused(response, 403, google, caplog)
    assert "not verified this e-mail address" in body
    assert not signed_in(client) and sessions() == []


def test_wrong_nonce_is_refused(tenant, client, google, caplog):
    google.login = Login(nonce="a-nonce-from-another-sign-in")

    assert_refused(sign_in(client, google), 400, google, caplog)
    assert not signed_in(client) and sessions() == []
    assert "InvalidClaimError" in caplog.text


def test_id_token_for_another_audience_is_refused(tenant, client, google, caplog):
    # azp still names us: only the audience check stands between this token and a session.
    google.login = Login(audience="some-other-client")

    assert_refused(sign_in(client, google), 400, google, caplog)
    assert not signed_in(client)


def test_expired_id_token_is_refused(tenant, client, google, caplog):
    google.login = Login(expired=True)

    assert_refused(sign_in(client, google), 400, google, caplog)
    assert not signed_in(client)
    assert "ExpiredTokenError" in caplog.text


def test_id_token_signed_with_another_key_is_refused(tenant, client, google, caplog):
    google.login = Login(wrong_key=True)

    assert_refused(sign_in(client, google), 400, google, caplog)
    assert not signed_in(client)
    assert "BadSignatureError" in caplog.text


def test_token_response_without_id_token_is_refused(tenant, client, google, caplog):
    google.login = Login(id_token=False)

    assert_refused(sign_in(client, google), 400, google, caplog)
    assert not signed_in(client)


def test_forged_state_is_refused(tenant, client, google, caplog):
    callback = at_provider(start(client).headers["Location"])
    parts = urlsplit(callback)
    query = parse_qs(parts.query)
    forged = urlencode({"code": query["code"][0], "state": "forged-state"})

    response = request(client, "GET", f"{parts.path}?{forged}")

    assert_refused(response, 400, google, caplog)
    assert google.token_requests == []  # refused before the code is spent
    assert not signed_in(client)
    assert "mismatching_state" in caplog.text


def test_missing_state_is_refused(tenant, client, google, caplog):
    callback = at_provider(start(client).headers["Location"])
    code = parse_qs(urlsplit(callback).query)["code"][0]

    response = request(client, "GET", f"/auth/google/callback?code={code}")

    assert_refused(response, 400, google, caplog)
    assert not signed_in(client)


def test_callback_in_another_browser_is_refused(tenant, app, client, google, caplog):
    """Login CSRF: an attacker's callback URL opened in the victim's browser."""
    callback = at_provider(start(client).headers["Location"])
    victim = app.test_client()
    request(victim, "GET", "/auth/login")

    assert_refused(back_at_service(victim, callback), 400, google, caplog)
    assert not signed_in(victim)


def test_callback_used_twice_is_refused(tenant, client, google, caplog):
    callback = at_provider(start(client).headers["Location"])
    assert back_at_service(client, callback).status_code == 303
    request(client, "POST", "/auth/logout", data={"csrf_token": _csrf(client)})

    assert_refused(back_at_service(client, callback), 400, google, caplog)
    assert not signed_in(client)


def test_access_denied_answer_is_a_clear_page(tenant, client, google, caplog):
    google.login = Login(deny=True)

    callback = at_provider(start(client).headers["Location"])
    assert parse_qs(urlsplit(callback).query)["error"] == ["access_denied"]
    response = back_at_service(client, callback)

    body = assert_refused(response, 400, google, caplog)
    assert "cancelled or refused" in body
    assert google.token_requests == []
    assert not signed_in(client)


def test_unknown_provider_error_is_logged_without_its_value(tenant, client, google, caplog):
    response = request(client, "GET", "/auth/google/callback?error=ceo%40acme.example")

    assert_refused(response, 400, google, caplog, "ceo@acme.example")
    assert "error=other" in caplog.text


def test_start_needs_the_csrf_token(tenant, client, google):
    request(client, "GET", "/auth/login")
    response = request(client, "POST", "/auth/google", data={"next": ""})
    assert response.status_code == 400
    assert google.authorizations == []


def test_google_sign_in_is_off_without_a_client_id(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "OIDC_CLIENT_ID", None)
    assert "Sign in with Google" not in request(client, "GET", "/auth/login").get_data(as_text=True)
    assert request(client, "GET", "/auth/google/callback?code=x&state=y").status_code == 404
    token = _csrf(client)
    assert request(client, "POST", "/auth/google", data={"csrf_token": token}).status_code == 404


# -- the provider unreachable ----------------------------------------------------------


def test_unreachable_provider_at_start_is_a_503_page(tenant, app, client, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    configure(app, monkeypatch, f"http://127.0.0.1:{free_port()}")  # nothing listens there

    response = start(client)

    body = response.get_data(as_text=True)
    assert response.status_code == 503 and "cannot be reached" in body
    assert "Traceback" not in body
    assert "provider unreachable (ConnectionError)" in caplog.text


def test_provider_gone_before_the_token_exchange_is_a_503_page(
    tenant, app, client, monkeypatch, caplog
):
    caplog.set_level(logging.INFO)
    with OIDCProvider(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI]) as brief:
        configure(app, monkeypatch, brief.issuer)
        callback = at_provider(start(client).headers["Location"])
    # The provider has stopped: its discovery document is cached, its token endpoint is gone.

    response = back_at_service(client, callback)

    body = response.get_data(as_text=True)
    assert response.status_code == 503 and "cannot be reached" in body
    assert "Traceback" not in body
    assert not signed_in(client)


def _csrf(client) -> str:
    page = request(client, "GET", "/auth/login")
    return CSRF.search(page.get_data(as_text=True)).group(1)
