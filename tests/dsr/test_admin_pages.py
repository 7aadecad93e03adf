"""The requests pages: the list with its due-soon section and filters, the detail with
history, instructions and callback failures, the admins' forms, and the DPO's view."""

from __future__ import annotations

from datetime import timedelta

import pytest

from privacy.accounts import services as accounts
from privacy.database import utcnow
from privacy.dsr import deadlines
from privacy.dsr import services
from privacy.dsr.models import CallbackDelivery
from privacy.dsr.models import ErasureInstruction
from privacy.extensions import db
from privacy.support import services as support
from tests.auth import conftest as auth_fixtures
from tests.auth.conftest import links_in
from tests.auth.conftest import messages
from tests.auth.test_signin import sign_in

# The sign-in tests' browsers and mail outbox, as fixtures of this module.
browser = auth_fixtures.browser
new_browser = auth_fixtures.new_browser

REQUESTER = "ana.lima@example.org"
MEMBER = "mia@acme.example"


def submit(tenant, *, kind: str = "access", source: str = "form", days_ago: int = 0):
    request = services.submit(tenant.account, kind=kind, source=source, email=REQUESTER, actor="t")
    if days_ago:
        moment = utcnow() - timedelta(days=days_ago)
        request.submitted_at = request.received_at = moment
        request.due_at = deadlines.due_date(moment)
    db.session.commit()
    return request


def add_member(tenant, email: str = MEMBER, role: str = "member"):
    member = accounts.add_member(tenant.account, email=email, name="Mia", role=role, actor="t")
    db.session.commit()
    return member


def operator(browser, outbox, email: str, role: str):
    support.create_operator(email=email, name="Op", role=role, actor="t")
    db.session.commit()
    before = len(messages(outbox)) if outbox.exists() else 0
    browser.request_link(email)
    (link,) = links_in(messages(outbox)[before])
    assert browser.use_link(link).status_code == 303


def detail(request) -> str:
    return f"/requests/{request.public_id}"


def text(response) -> str:
    return response.get_data(as_text=True)


# -- the list ----------------------------------------------------------------------------


def test_the_list_shows_due_soon_and_overdue_first_and_filters(tenant, browser, outbox):
    overdue = submit(tenant, days_ago=40, kind="erasure")
    soon = submit(tenant, days_ago=27)
    later = submit(tenant, kind="portability")
    sign_in(browser, outbox)

    page = browser.get("/requests")
    assert page.status_code == 200
    html = text(page)
    assert 'href="/requests"' in html  # the nav link
    due_section = html.split("<h2>All requests</h2>")[0]
    assert str(overdue.public_id) in due_section and str(soon.public_id) in due_section
    assert str(later.public_id) not in due_section
    assert "overdue" in due_section.split(str(overdue.public_id), 1)[1].split("</tr>")[0]
    assert "overdue" not in due_section.split(str(soon.public_id), 1)[1].split("</tr>")[0]
    assert REQUESTER not in html

    filtered = text(browser.get("/requests?kind=portability")).split("<h2>All requests</h2>")[1]
    assert str(later.public_id) in filtered and str(soon.public_id) not in filtered
    by_status = text(browser.get("/requests?status=rejected")).split("<h2>All requests</h2>")[1]
    assert "No requests match these filters" in by_status
    bad = browser.get("/requests?status=lost")
    assert bad.status_code == 422 and "status" in text(bad)


def test_members_see_requests_but_no_email_and_no_forms(tenant, new_browser, outbox):
    add_member(tenant)
    request = submit(tenant, kind="erasure")
    member = new_browser()
    sign_in(member, outbox, MEMBER)

    page = member.get(detail(request))
    assert page.status_code == 200
    assert str(request.public_id) in text(page) and REQUESTER not in text(page)
    assert "Reject" not in text(page) and "Extend" not in text(page)
    refused = member.post(
        f"{detail(request)}/extension", {"months": "1", "reason": "x"}, page="/requests"
    )
    assert refused.status_code == 403
    db.session.refresh(request)
    assert request.extended_at is None


def test_another_accounts_request_is_404(tenant, other_tenant, browser, outbox):
    theirs = submit(other_tenant)
    sign_in(browser, outbox)

    assert browser.get(detail(theirs)).status_code == 404
    posted = browser.post(f"{detail(theirs)}/rejection", {"reason": "x"}, page="/requests")
    assert posted.status_code == 404
    db.session.refresh(theirs)
    assert theirs.status == "received"


# -- the detail and its forms -------------------------------------------------------------


def test_the_admin_sees_history_email_and_extends_once(tenant, browser, outbox):
    request = submit(tenant)
    sign_in(browser, outbox)

    page = text(browser.get(detail(request)))
    assert REQUESTER in page and "received" in page and "Extend" in page

    extended = browser.post(
        f"{detail(request)}/extension",
        {"months": "1", "reason": "Several systems to search"},
        page=detail(request),
    )
    assert extended.status_code == 303
    assert extended.headers["Location"].startswith(detail(request))
    after = text(browser.get(extended.headers["Location"]))
    assert "Several systems to search" in after and "Extended" in after
    db.session.refresh(request)
    assert request.extended_at is not None
    assert messages(outbox)[-1]["Subject"].endswith("more time needed")

    again = browser.post(
        f"{detail(request)}/extension", {"months": "1", "reason": "more"}, page=detail(request)
    )
    assert again.status_code == 409 and "one extension" in text(again)


@pytest.mark.parametrize(
    "months,status",
    [("3", 422), ("", 422), ("two", 422)],
)
def test_bad_extension_months_are_422(tenant, browser, outbox, months, status):
    request = submit(tenant)
    sign_in(browser, outbox)
    response = browser.post(
        f"{detail(request)}/extension", {"months": months, "reason": "r"}, page=detail(request)
    )
    assert response.status_code == status and "months" in text(response)


def test_no_extension_after_the_first_due_date(tenant, browser, outbox):
    request = submit(tenant, days_ago=35)
    sign_in(browser, outbox)
    assert 'name="months"' not in text(browser.get(detail(request)))

    response = browser.post(
        f"{detail(request)}/extension", {"months": "1", "reason": "late"}, page=detail(request)
    )
    assert response.status_code == 409 and "first due date" in text(response)


def test_a_rejection_tells_the_requester_the_reason_and_the_right_to_complain(
    tenant, browser, outbox
):
    request = submit(tenant)
    sign_in(browser, outbox)

    blank = browser.post(f"{detail(request)}/rejection", {"reason": " "}, page=detail(request))
    assert blank.status_code == 422
    response = browser.post(
        f"{detail(request)}/rejection",
        {"reason": "The address holds no account with this customer."},
        page=detail(request),
    )
    assert response.status_code == 303
    db.session.refresh(request)
    assert request.status == "rejected"
    assert request.reason == "The address holds no account with this customer."
    told = messages(outbox)[-1]
    assert told["To"] == REQUESTER
    body = told.get_body(("plain",)).get_content()
    assert "The address holds no account" in body and "supervisory authority" in body
    page = text(browser.get(detail(request)))
    assert "The address holds no account" in page and 'name="reason"' not in page


def test_an_exception_is_recorded_for_erasure_only(tenant, browser, outbox):
    access = submit(tenant)
    erasure = submit(tenant, kind="erasure")
    sign_in(browser, outbox)
    assert "Art. 17(3) exception" not in text(browser.get(detail(access)))
    assert "Record an Art. 17(3) exception" in text(browser.get(detail(erasure)))

    refused = browser.post(
        f"{detail(access)}/exception", {"point": "b", "reason": "tax"}, page=detail(access)
    )
    assert refused.status_code == 422 and "erasure only" in text(refused)
    unknown = browser.post(
        f"{detail(erasure)}/exception", {"point": "z", "reason": "tax"}, page=detail(erasure)
    )
    assert unknown.status_code == 422
    recorded = browser.post(
        f"{detail(erasure)}/exception",
        {"point": "e", "reason": "Pending litigation about this account."},
        page=detail(erasure),
    )
    assert recorded.status_code == 303
    db.session.refresh(erasure)
    assert (erasure.status, erasure.exception) == ("rejected", "e")
    body = messages(outbox)[-1].get_body(("plain",)).get_content()
    assert "Art. 17(3)" in body and "legal claims" in body and "supervisory authority" in body


def test_instructions_are_confirmed_from_the_page_and_callback_failures_show(
    tenant, browser, outbox
):
    request = submit(tenant, kind="erasure", source="opendsr")
    request.instructions.append(
        ErasureInstruction(
            target_ref="system:crm",
            target_name="CRM",
            target_kind="crm",
            region="eu",
            created_at=utcnow(),
        )
    )
    db.session.add(
        CallbackDelivery(
            request_id=request.id,
            url="https://controller.example/hook",
            status="in_progress",
            state="failed",
            attempts=9,
            last_error="HTTP 503",
            created_at=utcnow(),
        )
    )
    db.session.commit()
    (instruction,) = request.instructions
    sign_in(browser, outbox)

    listing = text(browser.get("/requests"))
    assert "Failed status callbacks" in listing and str(request.public_id) in listing
    page = text(browser.get(detail(request)))
    assert "CRM" in page and "Confirm erased" in page
    assert "https://controller.example/hook" in page and "HTTP 503" in page

    confirmed = browser.post(
        f"{detail(request)}/instructions/confirm",
        {"id": str(instruction.public_id)},
        page=detail(request),
    )
    assert confirmed.status_code == 303
    db.session.refresh(instruction)
    assert instruction.state == "confirmed" and instruction.confirmed_by.startswith("member:")
    again = browser.post(
        f"{detail(request)}/instructions/confirm",
        {"id": str(instruction.public_id)},
        page=detail(request),
    )
    assert again.status_code == 409
    bad = browser.post(
        f"{detail(request)}/instructions/confirm", {"id": "nope"}, page=detail(request)
    )
    assert bad.status_code == 422


def test_forms_need_the_csrf_token(tenant, browser, outbox):
    request = submit(tenant)
    sign_in(browser, outbox)
    response = browser.client.post(f"{detail(request)}/rejection", data={"reason": "x"})
    assert response.status_code == 400
    db.session.refresh(request)
    assert request.status == "received"


# -- the DPO ------------------------------------------------------------------------------


def test_the_dpo_sees_due_requests_of_every_account_without_emails(
    tenant, other_tenant, new_browser, outbox
):
    ours = submit(tenant, days_ago=40)
    theirs = submit(other_tenant, days_ago=27)
    later = submit(other_tenant)
    dpo = new_browser()
    operator(dpo, outbox, "dora@platform.example", "dpo")

    page = dpo.get("/dpo/requests")
    assert page.status_code == 200
    html = text(page)
    assert "Acme GmbH" in html and "Other Ltd" in html
    assert str(ours.public_id) in html and str(theirs.public_id) in html
    assert str(later.public_id) not in html
    assert "1 overdue" in html
    assert REQUESTER not in html and "admin@acme.example" not in html
    # The DPO is no member of the accounts: their requests stay closed to them.
    assert dpo.get(detail(ours)).status_code == 403


def test_the_dpo_page_is_for_the_dpo_only(tenant, new_browser, outbox):
    support_staff = new_browser()
    operator(support_staff, outbox, "olga@platform.example", "support")
    assert support_staff.get("/dpo/requests").status_code == 403

    admin = new_browser()
    sign_in(admin, outbox)
    assert admin.get("/dpo/requests").status_code == 403
    add_member(tenant)
    member = new_browser()
    sign_in(member, outbox, MEMBER)
    assert member.get("/dpo/requests").status_code == 403

    stranger = new_browser().get("/dpo/requests")
    assert stranger.status_code == 302 and "/auth/login" in stranger.headers["Location"]


def test_the_requesters_message_reaches_the_admins_only(client, tenant, new_browser, outbox):
    note = "I closed my account in 2024 <b>and</b> want my invoices kept."
    request = services.submit(
        tenant.account, kind="erasure", source="form", email=REQUESTER, message=note, actor="t"
    )
    db.session.commit()
    admin = new_browser()
    sign_in(admin, outbox)
    page = text(admin.get(detail(request)))
    assert "I closed my account in 2024 &lt;b&gt;and&lt;/b&gt; want my invoices kept." in page

    add_member(tenant)
    member = new_browser()
    sign_in(member, outbox, MEMBER)
    assert "invoices" not in text(member.get(detail(request)))

    api = f"/api/v1/requests/{request.public_id}"
    assert client.get(api, headers=tenant.headers).json["message"] == note
    assert client.get(api, headers=tenant.token_for("member")).json["message"] is None
