"""E-mail sign-in links, invitations, sessions and their ends, CSRF and rate limits."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import event
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update

from privacy import mail
from privacy.accounts import services as accounts
from privacy.accounts.models import Member
from privacy.audit.models import AuditEvent
from privacy.auth.models import LoginLink
from privacy.auth.models import UserSession
from privacy.database import utcnow
from privacy.extensions import db
from tests.auth.conftest import links_in
from tests.auth.conftest import messages
from tests.conftest import bearer
from tests.conftest import make_tenant

ADMIN = "admin@acme.example"


def sign_in(browser, outbox, email: str = ADMIN, which: int = 0):
    before = len(messages(outbox)) if outbox.exists() else 0
    assert browser.request_link(email).status_code == 303
    message = messages(outbox)[before]
    response = browser.use_link(links_in(message)[which])
    assert response.status_code == 303, response.get_data(as_text=True)
    return response


def audit_actions(account=None) -> list[tuple[str, dict | None]]:
    query = select(AuditEvent).order_by(AuditEvent.id)
    if account is not None:
        query = query.where(AuditEvent.account_ref == str(account.public_id))
    return [(e.action, e.data) for e in db.session.scalars(query)]


# -- the link ---------------------------------------------------------------------------


def test_sign_in_through_a_real_smtp_server(tenant, browser, smtp):
    assert browser.get("/members").headers["Location"].startswith("/auth/login")

    response = browser.request_link(ADMIN)

    assert response.status_code == 303 and response.headers["Location"] == "/auth/check-email"
    (message,) = smtp.messages()
    assert message["To"] == ADMIN
    (link,) = links_in(message)
    assert browser.get("/members").status_code == 302  # not signed in before the link is used
    landed = browser.use_link(link)
    assert landed.headers["Location"] == "/members"
    page = browser.get("/members")
    assert page.status_code == 200
    assert ADMIN in page.get_data(as_text=True) and "Acme GmbH" in page.get_data(as_text=True)
    stored = db.session.scalar(select(LoginLink))
    assert link not in (stored.token_hash,) and len(stored.token_hash) == 64  # a hash only


def test_the_answer_is_the_same_for_unknown_addresses(tenant, new_browser, outbox):
    known = new_browser().request_link(ADMIN)
    unknown = new_browser().request_link("nobody@acme.example")

    assert (known.status_code, known.headers["Location"]) == (
        unknown.status_code,
        unknown.headers["Location"],
    )
    assert [m["To"] for m in messages(outbox)] == [ADMIN]


def test_sign_in_does_the_same_work_for_known_and_unknown_addresses(
    tenant, new_browser, outbox, queue
):
    """Until the answer, a known address costs what an unknown one does: the same statements
    and the same job. The worker looks the address up afterwards."""
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    work = {}
    event.listen(db.engine, "before_cursor_execute", record)
    try:
        for email in (ADMIN, "nobody@acme.example"):
            browser = new_browser()
            browser.csrf()
            statements.clear()
            answer = browser.request_link(email)
            work[email] = (answer.status_code, answer.headers["Location"], list(statements))
    finally:
        event.remove(db.engine, "before_cursor_execute", record)

    assert work[ADMIN] == work["nobody@acme.example"]
    assert any(s.startswith("INSERT INTO queued_mail") for s in work[ADMIN][2])
    assert not any("members" in s or "operators" in s for s in work[ADMIN][2])
    assert queue.names() == ["mail.send_queued", "mail.send_queued"]
    assert db.session.scalar(select(func.count()).select_from(LoginLink)) == 0

    assert [m["To"] for m in messages(outbox)] == [ADMIN]
    assert queue.results("mail.send_queued")[1] == "nothing to send"
    assert db.session.scalar(select(func.count()).select_from(mail.QueuedMail)) == 1


def test_a_link_works_once(tenant, new_browser, outbox):
    first = new_browser()
    first.request_link(ADMIN)
    (link,) = links_in(messages(outbox)[0])
    assert first.use_link(link).status_code == 303

    again = new_browser()
    assert again.get(f"/auth/link/{link}").status_code == 400
    token = again.csrf()
    refused = again.client.post("/auth/link", data={"csrf_token": token, "token": link})
    assert refused.status_code == 400
    assert "expired or has been used" in refused.get_data(as_text=True)
    assert again.get("/members").status_code == 302


def test_a_link_expires_after_15_minutes(tenant, browser, outbox):
    browser.request_link(ADMIN)
    (link,) = links_in(messages(outbox)[0])
    row = db.session.scalar(select(LoginLink))
    assert timedelta(minutes=14) < row.expires_at - row.created_at <= timedelta(minutes=15)
    db.session.execute(update(LoginLink).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()

    assert browser.get(f"/auth/link/{link}").status_code == 400
    token = browser.csrf()
    assert (
        browser.client.post("/auth/link", data={"csrf_token": token, "token": link}).status_code
        == 400
    )
    assert browser.get("/members").status_code == 302


def test_a_member_of_two_accounts_gets_one_link_per_account(tenant, app, new_browser, outbox):
    other = make_tenant(name="Zeta SARL", admin_email="boss@zeta.example")
    accounts.add_member(other.account, email=ADMIN, name="Ada", role="member", actor="test")
    db.session.commit()

    new_browser().request_link(ADMIN)
    (message,) = messages(outbox)
    acme_link, zeta_link = links_in(message)
    body = message.get_body(("plain",)).get_content()
    assert body.index("Acme GmbH") < body.index("Zeta SARL")

    acme, zeta = new_browser(), new_browser()
    acme.use_link(acme_link)
    zeta.use_link(zeta_link)
    assert "Ada Admin" in acme.get("/members").get_data(as_text=True)
    zeta_page = zeta.get("/members").get_data(as_text=True)
    assert "boss@zeta.example" in zeta_page and "Acme GmbH" not in zeta_page
    # Zeta's member is no admin there: the admin pages stay closed to that session.
    assert zeta.get("/tokens").status_code == 403
    assert acme.get("/tokens").status_code == 200


def test_a_removed_members_link_no_longer_works(tenant, browser, outbox):
    member = accounts.add_member(
        tenant.account, email="kim@acme.example", name="Kim", role="member", actor="test"
    )
    db.session.commit()
    browser.request_link("kim@acme.example")
    (link,) = links_in(messages(outbox)[0])
    accounts.remove_member(tenant.account, member, actor="test")
    db.session.commit()

    assert browser.get(f"/auth/link/{link}").status_code == 400


def test_forms_need_the_csrf_token(tenant, browser, outbox):
    response = browser.client.post("/auth/login", data={"email": ADMIN})
    assert response.status_code == 400
    assert not outbox.exists() or messages(outbox) == []
    sign_in(browser, outbox)
    no_token = browser.client.post("/members", data={"email": "x@acme.example"})
    assert no_token.status_code == 400
    assert len(accounts.list_members(tenant.account)) == 1


def test_a_bad_address_is_422_with_the_form_again(tenant, browser, outbox):
    response = browser.request_link("not an address")
    assert response.status_code == 422
    assert 'name="email"' in response.get_data(as_text=True)


def test_sign_in_requests_are_rate_limited_per_address_and_per_client(tenant, new_browser, app):
    browser = new_browser()
    statuses = [browser.request_link(ADMIN).status_code for _ in range(6)]
    assert statuses == [303] * 5 + [429]
    limited = browser.request_link(ADMIN)
    assert int(limited.headers["Retry-After"]) > 0
    # Another address from the same client is still served ...
    assert browser.request_link("someone@acme.example").status_code == 303
    # ... until the client's own limit (ten times the per-address one) is reached.
    statuses = [browser.request_link(f"p{n}@acme.example").status_code for n in range(60)]
    assert 429 in statuses and statuses.index(429) >= 40


def test_a_rate_limited_api_style_client_gets_the_json_shape(tenant, browser):
    for _ in range(5):
        browser.request_link(ADMIN)
    token = browser.csrf()
    response = browser.client.post(
        "/auth/login",
        data={"csrf_token": token, "email": ADMIN},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 429
    assert response.json["code"] == 429 and response.headers["Retry-After"]


# -- invitations ------------------------------------------------------------------------


def test_an_invitation_is_mailed_and_its_link_signs_the_member_in(
    tenant, client, new_browser, outbox
):
    response = client.post(
        "/api/v1/members",
        json={"email": "neu@acme.example", "name": "Nele Neu"},
        headers=tenant.headers,
    )
    assert response.status_code == 201 and response.json["joined_at"] is None
    (message,) = messages(outbox)
    assert message["To"] == "neu@acme.example" and "Acme GmbH" in message["Subject"]
    (link,) = links_in(message)
    row = db.session.scalar(select(LoginLink))
    assert row.purpose == "invitation" and row.expires_at - row.created_at == timedelta(days=7)

    browser = new_browser()
    browser.use_link(link)
    assert browser.get("/members").status_code == 200
    member = client.get(f"/api/v1/members/{response.json['id']}", headers=tenant.headers).json
    assert member["joined_at"] is not None
    assert ("member.invited", None) in audit_actions(tenant.account)


def test_the_sixth_invitation_to_one_address_in_an_hour_is_refused_and_nothing_is_queued(
    tenant, client, outbox, queue
):
    created = client.post(
        "/api/v1/members", json={"email": "neu@acme.example"}, headers=tenant.headers
    )
    assert created.status_code == 201
    resend = f"/api/v1/members/{created.json['id']}/invitation"
    statuses = [client.post(resend, headers=tenant.headers).status_code for _ in range(5)]

    assert statuses == [200, 200, 200, 200, 429]
    refused = client.post(resend, headers=tenant.headers)
    assert refused.status_code == 429
    assert refused.json["code"] == 429 and "invitations" in refused.json["message"]
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    assert queue.names() == ["mail.send_queued"] * 5
    assert db.session.scalar(select(func.count()).select_from(mail.QueuedMail)) == 5
    invitations = (
        select(func.count()).select_from(LoginLink).where(LoginLink.purpose == "invitation")
    )
    assert db.session.scalar(invitations) == 5
    assert len(messages(outbox)) == 5
    # Another address of the account is still served.
    other = client.post(
        "/api/v1/members", json={"email": "zwei@acme.example"}, headers=tenant.headers
    )
    assert other.status_code == 201


def test_invitations_are_limited_per_account_and_a_refused_one_adds_no_member(
    app, tenant, client, browser, outbox, queue, monkeypatch
):
    monkeypatch.setitem(app.config, "MAIL_ACCOUNT_RATE_LIMIT", "3 per hour")
    for n in range(3):
        added = client.post(
            "/api/v1/members", json={"email": f"m{n}@acme.example"}, headers=tenant.headers
        )
        assert added.status_code == 201

    refused = client.post(
        "/api/v1/members", json={"email": "m3@acme.example"}, headers=tenant.headers
    )

    assert refused.status_code == 429 and refused.headers["Retry-After"]
    assert "Too many invitations were sent from this account" in refused.json["message"]
    db.session.rollback()  # as the end of the request does (the tests share its session)
    emails = [m["email"] for m in client.get("/api/v1/members", headers=tenant.headers).json]
    assert "m3@acme.example" not in emails
    assert queue.names() == ["mail.send_queued"] * 3

    # The page says so too.
    sign_in(browser, outbox)
    page = browser.post("/members", {"email": "m4@acme.example"}, page="/members")
    assert page.status_code == 429
    assert "Too many invitations were sent from this account" in page.get_data(as_text=True)


def test_an_expired_invitation_lets_nobody_in(tenant, client, new_browser, outbox):
    created = client.post(
        "/api/v1/members", json={"email": "late@acme.example"}, headers=tenant.headers
    ).json
    db.session.execute(
        update(Member)
        .values(invited_at=utcnow() - timedelta(days=8))
        .where(Member.role == "member")
    )
    db.session.commit()

    browser = new_browser()
    browser.request_link("late@acme.example")
    assert len(messages(outbox)) == 1  # the invitation only: no sign-in link for an expired one
    resent = client.post(f"/api/v1/members/{created['id']}/invitation", headers=tenant.headers)
    assert resent.status_code == 200
    (link,) = links_in(messages(outbox)[1])
    browser.use_link(link)
    assert browser.get("/members").status_code == 200
    again = client.post(f"/api/v1/members/{created['id']}/invitation", headers=tenant.headers)
    assert again.status_code == 409


# -- sessions ---------------------------------------------------------------------------


def session_row() -> UserSession:
    return db.session.scalars(select(UserSession).order_by(UserSession.id.desc())).first()


def test_the_session_cookie_is_httponly_and_lax_and_holds_no_identity(tenant, browser, outbox):
    response = sign_in(browser, outbox)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # embedded default over plain HTTP; production sets it
    assert ADMIN not in cookie


def test_a_session_ends_after_30_idle_minutes_and_the_use_is_refused_and_audited(
    tenant, browser, outbox
):
    sign_in(browser, outbox)
    row = session_row()
    row.last_seen_at = utcnow() - timedelta(minutes=31)
    db.session.commit()

    assert browser.get("/members").status_code == 302
    db.session.refresh(row)
    assert row.end_reason == "idle"
    assert ("session.refused", {"reason": "idle"}) in audit_actions(tenant.account)
    assert browser.get("/members").status_code == 302  # the cookie is gone too


def test_activity_keeps_a_session_alive_until_its_absolute_lifetime(tenant, browser, outbox):
    sign_in(browser, outbox)
    row = session_row()
    assert timedelta(hours=11, minutes=59) < row.expires_at - row.created_at <= timedelta(hours=12)
    row.last_seen_at = utcnow() - timedelta(minutes=29)
    db.session.commit()
    assert browser.get("/members").status_code == 200
    db.session.refresh(row)
    assert utcnow() - row.last_seen_at < timedelta(minutes=1)

    row.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert browser.get("/members").status_code == 302
    assert ("session.refused", {"reason": "lifetime"}) in audit_actions(tenant.account)


def test_a_role_change_ends_all_of_the_members_sessions(tenant, client, new_browser, outbox):
    kim = accounts.add_member(
        tenant.account, email="kim@acme.example", name="Kim", role="admin", actor="test"
    )
    db.session.commit()
    laptop, phone = new_browser(), new_browser()
    sign_in(laptop, outbox, "kim@acme.example")
    sign_in(phone, outbox, "kim@acme.example")
    assert laptop.get("/tokens").status_code == 200

    changed = client.patch(
        f"/api/v1/members/{kim.public_id}", json={"role": "member"}, headers=tenant.headers
    )
    assert changed.status_code == 200
    assert laptop.get("/members").status_code == 302
    assert phone.get("/members").status_code == 302
    actions = audit_actions(tenant.account)
    assert ("session.ended", {"sessions": 2, "reason": "role_changed"}) in actions
    assert actions.count(("session.refused", {"reason": "role_changed"})) == 2


def test_a_removed_members_session_is_refused_and_audited(tenant, new_browser, outbox):
    kim = accounts.add_member(
        tenant.account, email="kim@acme.example", name="Kim", role="member", actor="test"
    )
    db.session.commit()
    browser = new_browser()
    sign_in(browser, outbox, "kim@acme.example")
    admin = new_browser()
    sign_in(admin, outbox)

    removed = admin.post("/members/remove", {"id": str(kim.public_id)}, page="/members")
    assert removed.status_code == 303
    assert browser.get("/members").status_code == 302
    assert ("session.refused", {"reason": "removed"}) in audit_actions(tenant.account)


def test_sign_out_and_sign_out_everywhere(tenant, new_browser, outbox):
    laptop, phone, tablet = new_browser(), new_browser(), new_browser()
    for b in (laptop, phone, tablet):
        sign_in(b, outbox)

    assert laptop.post("/auth/logout", page="/members").status_code == 303
    assert laptop.get("/members").status_code == 302
    assert phone.get("/members").status_code == 200

    assert phone.post("/auth/logout-everywhere", page="/members").status_code == 303
    assert phone.get("/members").status_code == 302
    assert tablet.get("/members").status_code == 302


def test_the_last_admin_cannot_be_demoted_or_removed_from_the_page(tenant, browser, outbox):
    sign_in(browser, outbox)
    me = str(tenant.admin.public_id)
    demoted = browser.post("/members/role", {"id": me, "role": "member"}, page="/members")
    removed = browser.post("/members/remove", {"id": me}, page="/members")

    assert demoted.status_code == 409 and "last admin" in demoted.get_data(as_text=True)
    assert removed.status_code == 409
    assert browser.get("/members").status_code == 200


def test_admins_invite_and_manage_tokens_on_pages_members_only_view(
    tenant, client, new_browser, outbox
):
    admin = new_browser()
    sign_in(admin, outbox)
    invited = admin.post(
        "/members", {"email": "mo@acme.example", "name": "Mo", "role": "member"}, page="/members"
    )
    assert invited.status_code == 303
    created = admin.post(
        "/tokens", {"name": "pipeline", "role": "member", "scopes": "scrub"}, page="/tokens"
    )
    assert created.status_code == 201
    secret = re.search(r'id="new-token">(prv_[^<]+)<', created.get_data(as_text=True)).group(1)
    assert secret not in admin.get("/tokens").get_data(as_text=True)  # shown once
    assert client.get("/api/v1/scrub/settings", headers=bearer(secret)).status_code == 200
    assert client.get("/api/v1/account", headers=bearer(secret)).status_code == 403

    member = new_browser()
    invitation = [m for m in messages(outbox) if m["To"] == "mo@acme.example"][0]
    member.use_link(links_in(invitation)[0])
    page = member.get("/members")
    assert page.status_code == 200 and "Invite a member" not in page.get_data(as_text=True)
    assert member.get("/tokens").status_code == 403
    token = member.csrf("/members")
    forbidden = member.client.post(
        "/members", data={"csrf_token": token, "email": "x@acme.example"}
    )
    assert forbidden.status_code == 403


def test_next_takes_the_browser_back_but_never_off_site(tenant, browser, outbox):
    redirect = browser.get("/access-changes")
    assert redirect.headers["Location"] == "/auth/login?next=/access-changes"
    page = browser.get(redirect.headers["Location"]).get_data(as_text=True)
    assert 'name="next" value="/access-changes"' in page


def test_access_changes_are_published_to_admins(tenant, client, new_browser, outbox):
    client.post("/api/v1/members", json={"email": "mo@acme.example"}, headers=tenant.headers)
    client.post("/api/v1/tokens", json={"name": "ci"}, headers=tenant.headers)

    listed = client.get("/api/v1/access-changes", headers=tenant.headers)
    actions = [e["action"] for e in listed.json["items"]]
    assert actions[:3] == ["token.created", "member.invited", "member.added"]
    assert "session.started" not in actions
    member = tenant.token_for("member")
    assert client.get("/api/v1/access-changes", headers=member).status_code == 403

    admin = new_browser()
    sign_in(admin, outbox)
    page = admin.get("/access-changes").get_data(as_text=True)
    assert "member.invited" in page and "token.created" in page
    assert "mo@acme.example" not in page  # ids, not addresses
