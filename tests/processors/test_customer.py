"""The customer's side of the register: the public list, the account's view (effective list,
pending changes, objections, `?at=` history), notices, objections through the API and the
page, and the page itself for members and admins."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy import update

from privacy.accounts import services as accounts
from privacy.auth.models import UserSession
from privacy.crypto import token_hash
from privacy.database import utcnow
from privacy.extensions import db
from privacy.processors import services
from privacy.processors.models import ListVersion
from privacy.processors.models import Notice
from privacy.support import services as support
from tests.auth import conftest as auth_fixtures
from tests.auth.conftest import messages
from tests.processors import test_register as register_fixtures
from tests.processors.test_register import make
from tests.processors.test_register import with_dpa

# The register's isolated storage, as a fixture of this module.
register = register_fixtures.register

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
US_SCC = "SCC module 3, Commission Implementing Decision (EU) 2021/914"


def backdate(*tenants, days: int = 100) -> None:
    """The accounts existed before the changes of the test were announced."""
    for tenant in tenants:
        tenant.account.created_at = utcnow() - timedelta(days=days)
    db.session.commit()


def activate_us(legal_name: str = "Hosting Inc.", replaces=None):
    sp = with_dpa(make(["US"], legal_name=legal_name, services=["hosting"]))
    services.add_safeguard(
        sp, country="US", kind="scc", scc_module=3, signed_on="2026-01-10", actor="operator:dpo"
    )
    version = services.activate(sp, actor="operator:dpo", replaces=replaces)
    db.session.commit()
    return sp, version


@pytest.fixture
def announced(register, tenant, other_tenant):
    """Both accounts existed before: the change is pending for both, 30 days' notice."""
    backdate(tenant, other_tenant)
    return activate_us()


def member_headers(tenant) -> dict:
    return tenant.token_for("member")


def end_notice_period(version) -> None:
    db.session.execute(
        update(ListVersion)
        .where(ListVersion.id == version.id)
        .values(effective_at=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()


# -- the public list ---------------------------------------------------------------------


def test_the_public_list_names_active_sub_processors_with_locations_and_bases(
    client,
    register,
):
    assert client.get("/api/v1/public/subprocessors").json == {
        "list_version": 0,
        "updated_at": None,
        "subprocessors": [],
    }
    sp, version = activate_us()
    make(["DE"], legal_name="Draft GmbH")  # a draft is not on the list
    db.session.commit()

    response = client.get("/api/v1/public/subprocessors")  # no token

    assert response.status_code == 200
    body = response.json
    assert body["list_version"] == 1 and body["updated_at"].startswith(
        version.announced_at.strftime("%Y-%m-%dT%H:%M")
    )
    (listed,) = body["subprocessors"]
    assert listed == {
        "id": str(sp.public_id),
        "legal_name": "Hosting Inc.",
        "address": "Musterstraße 1, 10115 Berlin, Germany",
        "contact": "privacy@hosting.example",
        "website": None,
        "purpose": "hosting and storage",
        "data_categories": ["contact data"],
        "subject_categories": ["customers' users"],
        "services": ["hosting"],
        "locations": [
            {"country": "US", "name": "United States", "basis": "scc", "safeguard": US_SCC}
        ],
    }


# -- the account's view ------------------------------------------------------------------


def test_a_member_reads_what_is_effective_and_what_is_pending_with_its_date(
    client, tenant, announced
):
    sp, version = announced
    response = client.get("/api/v1/subprocessors", headers=member_headers(tenant))

    assert response.status_code == 200
    body = response.json
    assert body["list_version"] == 1 and body["effective"] == [] and body["objections"] == []
    (pending,) = body["pending"]
    assert pending["list_version"] == 1 and pending["change"] == "added"
    assert pending["subprocessor"]["legal_name"] == "Hosting Inc."
    assert pending["effective_at"].startswith(version.effective_at.strftime("%Y-%m-%dT%H:%M"))
    assert pending["may_object"] is True
    assert pending["notice"]["subprocessor"]["locations"][0]["safeguard"] == US_SCC

    end_notice_period(version)
    body = client.get("/api/v1/subprocessors", headers=member_headers(tenant)).json
    assert [sp["legal_name"] for sp in body["effective"]] == ["Hosting Inc."]
    assert body["effective"][0]["locations"][0]["basis"] == "scc"
    assert body["pending"] == []


def test_the_api_needs_a_token_with_the_subprocessors_scope(client, tenant, announced):
    assert client.get("/api/v1/subprocessors").status_code == 401
    narrow = tenant.token_for("admin", scopes=["requests"])
    assert client.get("/api/v1/subprocessors", headers=narrow).status_code == 403
    scoped = tenant.token_for("member", scopes=["subprocessors"])
    assert client.get("/api/v1/subprocessors", headers=scoped).status_code == 200
    assert client.get("/api/v1/subprocessors/notices", headers=scoped).status_code == 200


def test_at_answers_what_was_effective_on_a_past_date(client, tenant, register):
    backdate(tenant)
    first, version = activate_us()
    # Announced 40 days ago: in force for the account since 10 days ago.
    version.announced_at -= timedelta(days=40)
    version.effective_at -= timedelta(days=40)
    db.session.commit()
    activate_us("Hébergement SAS", replaces=first)
    headers = member_headers(tenant)

    def effective(at=None) -> list[str]:
        query = {"at": at.isoformat()} if at else {}
        response = client.get("/api/v1/subprocessors", query_string=query, headers=headers)
        assert response.status_code == 200, response.json
        return [sp["legal_name"] for sp in response.json["effective"]]

    before_first = version.announced_at + timedelta(days=1)
    assert effective(before_first) == []
    during_notice = client.get(
        "/api/v1/subprocessors",
        query_string={"at": before_first.isoformat().replace("+00:00", "Z")},
        headers=headers,
    ).json
    assert [c["list_version"] for c in during_notice["pending"]] == [1]
    assert during_notice["list_version"] == 1
    assert effective() == ["Hosting Inc."]
    assert effective(utcnow() + timedelta(days=31)) == ["Hébergement SAS"]

    naive = client.get(
        "/api/v1/subprocessors", query_string={"at": "2026-01-01T00:00:00"}, headers=headers
    )
    assert naive.status_code == 422 and "at" in naive.json["errors"]["query"]
    garbage = client.get("/api/v1/subprocessors", query_string={"at": "yesterday"}, headers=headers)
    assert garbage.status_code == 422


def test_the_notices_say_which_versions_the_account_was_told_of_and_when(client, tenant, announced):
    _sp, version = announced
    (notice,) = client.get("/api/v1/subprocessors/notices", headers=member_headers(tenant)).json
    assert notice["list_version"] == 1 and notice["change"] == "added"
    assert notice["subprocessor"] == "Hosting Inc."
    assert notice["notified_at"].startswith(version.announced_at.strftime("%Y-%m-%dT%H:%M"))
    assert notice["read_at"] is None
    assert notice["webhook"] == {"state": None, "attempts": 0, "error": None}


# -- objections --------------------------------------------------------------------------


def test_an_admin_objects_within_the_period_and_the_dpo_is_told(
    client, tenant, other_tenant, announced, outbox
):
    _sp, version = announced
    support.create_operator(email="dpo@platform.example", name="Dana", role="dpo", actor="t")
    db.session.commit()
    body = {"list_version": 1, "reason": "Our customers require EU-only hosting."}

    refused = client.post(
        "/api/v1/subprocessors/objections", json=body, headers=member_headers(tenant)
    )
    assert refused.status_code == 403

    response = client.post("/api/v1/subprocessors/objections", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.json
    objection = response.json
    assert objection["list_version"] == 1 and objection["state"] == "open"
    assert objection["subprocessor"]["legal_name"] == "Hosting Inc."
    assert objection["reason"] == body["reason"] and objection["outcome"] is None
    dpo_mail = [m for m in messages(outbox) if m["To"] == "dpo@platform.example"]
    assert len(dpo_mail) == 1 and "Objection" in dpo_mail[0]["Subject"]

    again = client.post("/api/v1/subprocessors/objections", json=body, headers=tenant.headers)
    assert again.status_code == 409

    view = client.get("/api/v1/subprocessors", headers=member_headers(tenant)).json
    assert [o["id"] for o in view["objections"]] == [objection["id"]]
    assert view["pending"][0]["may_object"] is False

    # Another account sees neither the objection nor its effect.
    other = client.get("/api/v1/subprocessors", headers=other_tenant.headers).json
    assert other["objections"] == [] and other["pending"][0]["may_object"] is True
    assert objection["id"] not in str(other)
    end_notice_period(version)
    mine = client.get("/api/v1/subprocessors", headers=tenant.headers).json
    theirs = client.get("/api/v1/subprocessors", headers=other_tenant.headers).json
    assert mine["effective"] == []
    assert [sp["legal_name"] for sp in theirs["effective"]] == ["Hosting Inc."]


def test_an_objection_after_the_notice_period_is_409(client, tenant, announced):
    _sp, version = announced
    end_notice_period(version)
    response = client.post(
        "/api/v1/subprocessors/objections",
        json={"list_version": 1, "reason": "too late"},
        headers=tenant.headers,
    )
    assert response.status_code == 409
    assert "notice period" in response.json["message"]


@pytest.mark.parametrize(
    "body,status,field",
    [
        ({"list_version": 7, "reason": "no such version"}, 404, None),
        ({"list_version": 1, "reason": ""}, 422, "reason"),
        ({"list_version": 1, "reason": "x" * 5001}, 422, "reason"),
        ({"list_version": "1", "reason": "a string"}, 422, "list_version"),
        ({"reason": "which one?"}, 422, "list_version"),
    ],
)
def test_objection_input_is_checked(client, tenant, announced, body, status, field):
    response = client.post("/api/v1/subprocessors/objections", json=body, headers=tenant.headers)
    assert response.status_code == status, response.json
    if field:
        assert field in response.json["errors"]["json"]


# -- the page ----------------------------------------------------------------------------


class PageBrowser:
    """A test client with a signed-in browser session; CSRF tokens from the page itself."""

    def __init__(self, app, member) -> None:
        secret = secrets.token_urlsafe(32)
        now = utcnow()
        db.session.add(
            UserSession(
                token_hash=token_hash(secret),
                member_id=member.id,
                account_id=member.account_id,
                method="email",
                created_at=now,
                last_seen_at=now,
                expires_at=now + timedelta(hours=1),
            )
        )
        db.session.commit()
        self.client = auth_fixtures._FreshG(app.test_client())
        with self.client.session_transaction() as cookie:
            cookie["sid"] = secret

    def get(self, path: str = "/account/subprocessors"):
        return self.client.get(path)

    def post(self, path: str, data: dict | None = None):
        page = self.get().get_data(as_text=True)
        data = {"csrf_token": CSRF.search(page).group(1), **(data or {})}
        return self.client.post(path, data=data)


def text(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def mia(tenant):
    member = accounts.add_member(
        tenant.account, email="mia@acme.example", name="Mia", role="member", actor="t"
    )
    db.session.commit()
    return member


def test_a_member_sees_the_lists_but_no_admin_forms(app, tenant, announced, mia):
    _sp, version = announced
    # An older change in force, so that the effective list has a row too.
    in_force = with_dpa(make(["DE"], legal_name="Mail GmbH", purpose="sending e-mail"))
    old = services.activate(in_force, actor="operator:dpo")
    end_notice_period(old)

    page = PageBrowser(app, mia).get()

    assert page.status_code == 200
    html = text(page)
    assert 'href="/account/subprocessors"' in html  # the nav link
    effective = html.split('id="effective"')[1].split("</table>")[0]
    assert "Mail GmbH" in effective and "sending e-mail" in effective
    assert "Germany (within the EU/EEA)" in effective
    pending = html.split('id="pending"')[1].split("</table>")[0]
    assert "Hosting Inc." in pending and version.effective_at.strftime("%Y-%m-%d %H:%M") in pending
    assert "United States (SCC module 3" in pending
    assert "Object to this change" not in html and "<h2>Webhook</h2>" not in html
    assert "2 unread" in html and "Mark read" not in html


def test_an_admin_objects_on_the_page_and_sees_the_objection(app, tenant, announced):
    browser = PageBrowser(app, tenant.admin)
    page = text(browser.get())
    assert "Object to this change" in page and "<h2>Webhook</h2>" in page

    refused = browser.post("/account/subprocessors/objections", {"list_version": "1"})
    assert refused.status_code == 422 and "reason" in text(refused)

    sent = browser.post(
        "/account/subprocessors/objections",
        {"list_version": "1", "reason": "EU-only <hosting> please"},
    )
    assert sent.status_code == 303
    html = text(browser.client.get(sent.headers["Location"]))
    assert "Your objection is recorded" in html
    objections = html.split('id="objections"')[1].split("</table>")[0]
    assert "EU-only &lt;hosting&gt; please" in objections and "open" in objections
    assert "awaiting the DPO" in objections
    assert "Object to this change" not in html and "Objected." in html


def test_a_member_cannot_post_the_admin_forms(app, tenant, announced, mia):
    browser = PageBrowser(app, mia)
    response = browser.post(
        "/account/subprocessors/objections", {"list_version": "1", "reason": "no"}
    )
    assert response.status_code == 403


def test_in_app_notices_are_marked_read_one_by_one_or_all(app, tenant, announced):
    activate_us("Support Inc.")
    browser = PageBrowser(app, tenant.admin)
    html = text(browser.get())
    assert "(2 unread)" in html and html.count("<strong>New:</strong>") == 2

    one = browser.post("/account/subprocessors/notices/read", {"list_version": "2"})
    assert one.status_code == 303
    db.session.expire_all()
    mine = {
        n.list_version.number: n.read_at
        for n in db.session.scalars(select(Notice).where(Notice.account_id == tenant.account.id))
    }
    assert mine[2] is not None and mine[1] is None
    html = text(browser.get())
    assert "(1 unread)" in html and html.count("<strong>New:</strong>") == 1

    assert browser.post("/account/subprocessors/notices/read").status_code == 303
    html = text(browser.get())
    assert "unread)" not in html and "<strong>New:</strong>" not in html
    api = browser.client.get("/api/v1/subprocessors/notices", headers=tenant.headers).json
    assert all(n["read_at"] for n in api)


def test_marking_read_touches_only_the_accounts_own_notices(app, tenant, other_tenant, announced):
    response = PageBrowser(app, tenant.admin).post("/account/subprocessors/notices/read")
    assert response.status_code == 303
    db.session.expire_all()
    states = {(n.account_id, n.read_at is not None) for n in db.session.scalars(select(Notice))}
    assert states == {(tenant.account.id, True), (other_tenant.account.id, False)}
