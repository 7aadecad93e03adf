"""Support access: operators enter a customer account only through an admin's grant."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy import update

from privacy.audit.models import AuditEvent
from privacy.database import utcnow
from privacy.extensions import db
from privacy.support import services as support
from privacy.support.models import SupportGrant
from tests.auth.conftest import links_in
from tests.auth.conftest import messages

OPS = "olga@platform.example"


def operator_signs_in(browser, outbox):
    before = len(messages(outbox)) if outbox.exists() else 0
    browser.request_link(OPS)
    (link,) = links_in(messages(outbox)[before])
    assert browser.use_link(link).headers["Location"] == "/support"


def grant(client, tenant, **body):
    body = {"operator_email": OPS, "hours": 4, "reason": "ticket 4711", **body}
    return client.post("/api/v1/support-grants", json=body, headers=tenant.headers)


def open_account(browser, grant_id: str):
    return browser.post("/support/open", {"id": grant_id}, page="/support")


def actions(account) -> list[tuple[str, dict | None]]:
    query = select(AuditEvent).where(AuditEvent.account_ref == str(account.public_id))
    return [(e.action, e.data) for e in db.session.scalars(query.order_by(AuditEvent.id))]


def setup_operator():
    support.create_operator(email=OPS, name="Olga Ops", role="support", actor="test")
    db.session.commit()


def test_an_operator_without_a_grant_sees_nothing_of_the_account(tenant, browser, outbox):
    setup_operator()
    operator_signs_in(browser, outbox)

    console = browser.get("/support")
    assert console.status_code == 200 and "No active grants" in console.get_data(as_text=True)
    assert browser.get("/members").status_code == 403
    assert "Acme" not in browser.get("/members").get_data(as_text=True)
    assert open_account(browser, "00000000-0000-0000-0000-000000000000").status_code == 404


def test_a_read_grant_opens_the_account_read_only_and_every_use_is_audited(
    tenant, client, browser, outbox
):
    setup_operator()
    created = grant(client, tenant)
    assert created.status_code == 201
    assert created.json["access"] == "read" and created.json["operator"]["email"] == OPS
    operator_signs_in(browser, outbox)
    assert "Acme GmbH" in browser.get("/support").get_data(as_text=True)

    assert open_account(browser, created.json["id"]).headers["Location"] == "/members"
    page = browser.get("/members")
    assert page.status_code == 200 and "admin@acme.example" in page.get_data(as_text=True)
    assert "Support access to Acme GmbH (read)" in page.get_data(as_text=True)
    # Read-only, and never the admin's own business, grant or not.
    assert browser.post("/members", {"email": "x@evil.example"}, page="/members").status_code == 403
    assert browser.get("/tokens").status_code == 403
    assert browser.get("/support-grants").status_code == 403

    recorded = actions(tenant.account)
    assert ("support.opened", {"access": "read"}) in recorded
    uses = [d for a, d in recorded if a == "support.access"]
    assert {"permission": "members:read", "method": "GET", "page": "account_pages.members"} in uses
    listed = client.get(f"/api/v1/support-grants/{created.json['id']}", headers=tenant.headers)
    assert listed.json["uses"] >= 2


def test_a_write_grant_allows_writes_but_not_members_tokens_or_grants(
    tenant, client, browser, outbox
):
    setup_operator()
    created = grant(client, tenant, access="write")
    operator_signs_in(browser, outbox)
    open_account(browser, created.json["id"])

    assert browser.get("/members").status_code == 200
    assert (
        browser.post(
            "/members/remove", {"id": str(tenant.admin.public_id)}, page="/members"
        ).status_code
        == 403
    )
    assert browser.get("/tokens").status_code == 403


def test_revoking_a_grant_takes_effect_on_the_next_request(tenant, client, browser, outbox):
    setup_operator()
    created = grant(client, tenant)
    operator_signs_in(browser, outbox)
    open_account(browser, created.json["id"])
    assert browser.get("/members").status_code == 200

    revoked = client.delete(f"/api/v1/support-grants/{created.json['id']}", headers=tenant.headers)
    assert revoked.status_code == 200 and revoked.json["revoked_at"]
    assert browser.get("/members").status_code == 403
    assert ("support.left", {"reason": "grant_inactive"}) in actions(tenant.account)
    assert open_account(browser, created.json["id"]).status_code == 404
    assert browser.get("/support").status_code == 200  # the operator is still signed in


def test_an_expired_grant_closes_the_account(tenant, client, browser, outbox):
    setup_operator()
    created = grant(client, tenant, hours=72)
    operator_signs_in(browser, outbox)
    open_account(browser, created.json["id"])
    db.session.execute(update(SupportGrant).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()

    assert browser.get("/members").status_code == 403
    listed = client.get("/api/v1/support-grants", headers=tenant.headers).json
    assert listed[0]["revoked_at"] is None


def test_grants_last_at_most_72_hours_and_need_a_known_operator_and_a_reason(tenant, client):
    setup_operator()
    assert grant(client, tenant, hours=73).status_code == 422
    assert grant(client, tenant, hours=0).status_code == 422
    unknown = grant(client, tenant, operator_email="nobody@platform.example")
    assert unknown.status_code == 422 and "operator_email" in unknown.json["errors"]
    assert grant(client, tenant, reason="").status_code == 422
    assert grant(client, tenant, access="root").status_code == 422
    ok = grant(client, tenant, hours=72)
    expires = ok.json["expires_at"]
    assert ok.status_code == 201 and expires
    member = tenant.token_for("member")
    assert client.get("/api/v1/support-grants", headers=member).status_code == 403


def test_another_accounts_grant_does_not_open_this_account(
    tenant, other_tenant, client, browser, outbox
):
    setup_operator()
    created = grant(client, other_tenant)
    operator_signs_in(browser, outbox)
    open_account(browser, created.json["id"])

    page = browser.get("/members").get_data(as_text=True)
    assert "boss@other.example" in page and "admin@acme.example" not in page
    assert actions(tenant.account) == [
        a for a in actions(tenant.account) if not a[0].startswith("support.")
    ]


def test_admins_grant_and_see_uses_on_the_page(tenant, new_browser, outbox):
    setup_operator()
    admin = new_browser()
    admin.request_link("admin@acme.example")
    (link,) = links_in(messages(outbox)[0])
    admin.use_link(link)
    made = admin.post(
        "/support-grants",
        {"operator_email": OPS, "access": "read", "hours": "8", "reason": "ticket 9"},
        page="/support-grants",
    )
    assert made.status_code == 303
    bad = admin.post(
        "/support-grants",
        {"operator_email": OPS, "access": "read", "hours": "100", "reason": "x"},
        page="/support-grants",
    )
    assert bad.status_code == 422

    operator = new_browser()
    operator_signs_in(operator, outbox)
    grant_row = db.session.scalar(select(SupportGrant))
    open_account(operator, str(grant_row.public_id))
    operator.get("/members")

    page = admin.get("/support-grants").get_data(as_text=True)
    assert "support.opened" in page and "GET account_pages.members" in page
    assert "Olga Ops" in page
