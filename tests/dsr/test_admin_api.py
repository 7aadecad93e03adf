"""The oversight API under /api/v1/requests: list and filters, detail with history,
extension, rejection, Art. 17(3) exceptions, instruction confirmation, permissions."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from privacy.database import utcnow
from privacy.dsr import deadlines
from privacy.dsr import services
from privacy.dsr import tasks
from privacy.dsr.models import CallbackDelivery
from privacy.extensions import db
from privacy.inventory import services as inventory
from tests.auth.conftest import messages

# The sign-in tests' browsers and mail outbox, as fixtures of this module.

EMAIL = "ana.lima@example.org"


@pytest.fixture
def paused(monkeypatch):
    """Requests stay open: the worker does not pick them up."""
    monkeypatch.setattr(tasks.process, "delay", lambda *args: None)


def submit(tenant, kind: str = "access", source: str = "opendsr", email: str = EMAIL, **kw):
    request = services.submit(
        tenant.account, kind=kind, source=source, email=email, actor="t", **kw
    )
    db.session.commit()
    return request


def opendsr(client, tenant, kind: str = "access", **extra) -> uuid.UUID:
    body = {
        "regulation": "gdpr",
        "subject_request_id": str(uuid.uuid4()),
        "subject_request_type": kind,
        "submitted_time": utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "subject_identities": [{"identity_type": "email", "identity_value": EMAIL}],
        **extra,
    }
    assert client.post("/opendsr/v1/requests", json=body, headers=tenant.headers).status_code == 201
    request = services.get_by_subject_request_id(
        tenant.account, uuid.UUID(body["subject_request_id"])
    )
    return request.public_id


def make_old(request, days: int) -> None:
    """Received `days` ago: the due date follows, as if the clock had moved on."""
    moment = utcnow() - timedelta(days=days)
    request.submitted_at = request.received_at = moment
    request.due_at = deadlines.due_date(moment)
    db.session.commit()


def url(request, tail: str = "") -> str:
    return f"/api/v1/requests/{request.public_id}{tail}"


# -- list and detail --------------------------------------------------------------------


def test_the_list_is_newest_first_and_filters_by_status_and_kind(client, tenant):
    access = submit(tenant, kind="access")
    erasure = submit(tenant, kind="erasure")
    rejected = submit(tenant, kind="portability")
    services.reject(tenant.account, rejected, reason="manifestly unfounded", actor="t")
    db.session.commit()

    everything = client.get("/api/v1/requests", headers=tenant.headers)
    assert everything.status_code == 200
    assert [r["id"] for r in everything.json["items"]] == [
        str(rejected.public_id),
        str(erasure.public_id),
        str(access.public_id),
    ]
    assert everything.json["next_cursor"] is None
    assert "email" not in everything.json["items"][0]

    by_kind = client.get("/api/v1/requests?kind=erasure", headers=tenant.headers).json
    assert [r["id"] for r in by_kind["items"]] == [str(erasure.public_id)]
    by_status = client.get("/api/v1/requests?status=rejected", headers=tenant.headers).json
    assert [r["id"] for r in by_status["items"]] == [str(rejected.public_id)]


def test_overdue_and_due_within_days_list_open_requests_only(client, tenant):
    overdue = submit(tenant)
    make_old(overdue, 40)
    soon = submit(tenant)
    make_old(soon, 27)  # due in about four days
    later = submit(tenant)  # due in a month
    finished_late = submit(tenant)
    make_old(finished_late, 40)
    services.reject(tenant.account, finished_late, reason="duplicate", actor="t")
    db.session.commit()

    late = client.get("/api/v1/requests?overdue=true", headers=tenant.headers).json
    assert [r["id"] for r in late["items"]] == [str(overdue.public_id)]
    assert late["items"][0]["overdue"] is True
    week = client.get("/api/v1/requests?due_within_days=7", headers=tenant.headers).json
    assert [r["id"] for r in week["items"]] == [str(soon.public_id), str(overdue.public_id)]
    assert str(later.public_id) not in str(week)


def test_the_list_pages_with_a_cursor(client, tenant):
    made = [submit(tenant).public_id for _ in range(3)]

    first = client.get("/api/v1/requests?limit=2", headers=tenant.headers).json
    second = client.get(
        f"/api/v1/requests?limit=2&cursor={first['next_cursor']}", headers=tenant.headers
    ).json

    assert [r["id"] for r in first["items"] + second["items"]] == [str(i) for i in made[::-1]]
    assert second["next_cursor"] is None


@pytest.mark.parametrize(
    "query,field",
    [
        ("status=lost", "status"),
        ("kind=rectification", "kind"),
        ("due_within_days=0", "due_within_days"),
        ("overdue=maybe", "overdue"),
        ("limit=0", "limit"),
    ],
)
def test_bad_filters_are_422_with_the_field(client, tenant, query, field):
    response = client.get(f"/api/v1/requests?{query}", headers=tenant.headers)
    assert response.status_code == 422
    assert response.json["code"] == 422 and field in response.json["errors"]["query"]


def test_a_bad_cursor_is_422(client, tenant):
    response = client.get("/api/v1/requests?cursor=bm9wZQ", headers=tenant.headers)
    assert response.status_code == 422 and "cursor" in response.json["errors"]["query"]


def test_the_detail_has_history_and_the_email_for_admins_only(client, tenant, paused):
    request_id = opendsr(client, tenant, kind="erasure")

    detail = client.get(f"/api/v1/requests/{request_id}", headers=tenant.headers)
    assert detail.status_code == 200
    body = detail.json
    assert body["id"] == str(request_id) and body["kind"] == "erasure"
    assert body["source"] == "opendsr" and body["status"] == "verified"
    assert body["opendsr_status"] == "pending" and body["overdue"] is False
    assert body["email"] == EMAIL
    assert [(e["action"], e["status"]) for e in body["history"]] == [
        ("received", "received"),
        ("verified", "verified"),
    ]
    assert body["history"][1]["note"] == "authenticated controller"
    assert body["instructions"] == [] and body["callbacks"] == []
    assert {"received_at", "due_at", "extended_at", "completed_at", "exception"} <= set(body)

    as_member = client.get(f"/api/v1/requests/{request_id}", headers=tenant.token_for("member"))
    assert as_member.status_code == 200
    assert as_member.json["email"] is None and EMAIL not in as_member.get_data(as_text=True)


def test_the_detail_shows_callback_failures(client, tenant):
    request = submit(tenant)
    db.session.add(
        CallbackDelivery(
            request_id=request.id,
            url="https://controller.example/hook",
            status="pending",
            state="failed",
            attempts=9,
            last_error="HTTP 500",
            created_at=utcnow(),
        )
    )
    db.session.commit()

    (callback,) = client.get(url(request), headers=tenant.headers).json["callbacks"]
    assert callback == {
        "url": "https://controller.example/hook",
        "status": "pending",
        "state": "failed",
        "attempts": 9,
        "last_error": "HTTP 500",
        "delivered_at": None,
    }


def test_another_accounts_request_is_404_everywhere(client, tenant, other_tenant):
    request = submit(tenant, kind="erasure")
    theirs = other_tenant.headers

    assert client.get(url(request), headers=theirs).status_code == 404
    for tail, body in [
        ("/extension", {"months": 1, "reason": "complex"}),
        ("/rejection", {"reason": "no"}),
        ("/exception", {"point": "b", "reason": "tax law"}),
        (f"/instructions/{uuid.uuid4()}/confirmation", None),
    ]:
        response = client.post(url(request, tail), json=body, headers=theirs)
        assert response.status_code == 404, tail
        assert response.json["code"] == 404
    db.session.refresh(request)
    assert request.status == "received" and request.extended_at is None
    listed = client.get("/api/v1/requests", headers=theirs).json
    assert listed["items"] == []


def test_members_read_but_cannot_decide(client, tenant):
    request = submit(tenant)
    member = tenant.token_for("member")

    assert client.get("/api/v1/requests", headers=member).status_code == 200
    extended = client.post(
        url(request, "/extension"), json={"months": 1, "reason": "complex"}, headers=member
    )
    assert extended.status_code == 403 and extended.json["code"] == 403
    assert (
        client.post(url(request, "/rejection"), json={"reason": "x"}, headers=member).status_code
        == 403
    )
    assert client.get("/api/v1/requests").status_code == 401


# -- extension ---------------------------------------------------------------------------


def test_an_extension_moves_the_due_date_and_is_allowed_once(client, tenant):
    request = submit(tenant)
    first_due = request.due_at

    response = client.post(
        url(request, "/extension"),
        json={"months": 2, "reason": "Many systems to search"},
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.json
    body = response.json
    assert body["extension_reason"] == "Many systems to search" and body["extended_at"]
    db.session.refresh(request)
    assert request.due_at.month != first_due.month and request.due_at > first_due + timedelta(
        days=55
    )
    assert body["history"][-1]["action"] == "extended"
    assert body["history"][-1]["note"] == "Many systems to search"

    again = client.post(
        url(request, "/extension"), json={"months": 1, "reason": "more"}, headers=tenant.headers
    )
    assert again.status_code == 409 and "one extension" in again.json["message"]


def test_no_extension_after_the_first_due_date(client, tenant):
    request = submit(tenant)
    make_old(request, 32)

    response = client.post(
        url(request, "/extension"), json={"months": 1, "reason": "late"}, headers=tenant.headers
    )
    assert response.status_code == 409 and "first due date" in response.json["message"]


@pytest.mark.parametrize(
    "body,field",
    [
        ({"months": 3, "reason": "too long"}, "months"),
        ({"months": 0, "reason": "none"}, "months"),
        ({"months": "2", "reason": "text"}, "months"),
        ({"reason": "no months"}, "months"),
        ({"months": 1}, "reason"),
        ({"months": 1, "reason": ""}, "reason"),
        ({"months": 1, "reason": "ok", "extra": 1}, "extra"),
    ],
)
def test_bad_extensions_are_422(client, tenant, body, field):
    request = submit(tenant)
    response = client.post(url(request, "/extension"), json=body, headers=tenant.headers)
    assert response.status_code == 422
    assert field in response.json["errors"]["json"]
    db.session.refresh(request)
    assert request.extended_at is None


def test_a_blank_reason_is_422_from_the_service(client, tenant):
    request = submit(tenant)
    response = client.post(
        url(request, "/extension"), json={"months": 1, "reason": "   "}, headers=tenant.headers
    )
    assert response.status_code == 422 and "reason" in response.json["errors"]


def test_a_malformed_body_is_400(client, tenant):
    request = submit(tenant)
    response = client.post(
        url(request, "/rejection"),
        data='{"reason": ',
        headers=tenant.headers,
        content_type="application/json",
    )
    assert response.status_code == 400 and response.json["code"] == 400


# -- rejection and exceptions ------------------------------------------------------------


def test_a_rejection_stores_the_reason_and_tells_a_form_requester_of_the_right_to_complain(
    client, tenant, outbox
):
    request = submit(tenant, source="form")

    response = client.post(
        url(request, "/rejection"),
        json={"reason": "We hold no account under this address."},
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.json
    assert response.json["status"] == "rejected" and response.json["opendsr_status"] == "cancelled"
    assert response.json["reason"] == "We hold no account under this address."
    assert response.json["exception"] is None
    (message,) = messages(outbox)
    assert message["To"] == EMAIL
    text = message.get_body(("plain",)).get_content()
    assert "We hold no account under this address." in text
    assert "supervisory authority" in text and "Art. 77" in text

    again = client.post(url(request, "/rejection"), json={"reason": "x"}, headers=tenant.headers)
    assert again.status_code == 409


def test_an_opendsr_rejection_sends_no_mail(client, tenant, outbox):
    request = submit(tenant, source="opendsr")
    response = client.post(
        url(request, "/rejection"), json={"reason": "duplicate"}, headers=tenant.headers
    )
    assert response.status_code == 200
    assert not outbox.exists() or messages(outbox) == []


def test_an_exception_refuses_an_erasure_under_art_17_3(client, tenant, outbox, paused):
    request_id = opendsr(client, tenant, kind="erasure")

    response = client.post(
        f"/api/v1/requests/{request_id}/exception",
        json={"point": "b", "reason": "Invoices must be kept for ten years (tax law)."},
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.json
    assert response.json["status"] == "rejected" and response.json["exception"] == "b"
    assert response.json["reason"].startswith("Invoices")


def test_an_exception_is_for_erasure_only(client, tenant):
    request = submit(tenant, kind="access")
    response = client.post(
        url(request, "/exception"), json={"point": "e", "reason": "claims"}, headers=tenant.headers
    )
    assert response.status_code == 422 and "exception" in response.json["errors"]
    db.session.refresh(request)
    assert request.status == "received" and request.reason is None


@pytest.mark.parametrize("point", ["f", "", "B"])
def test_an_unknown_exception_point_is_422(client, tenant, point):
    request = submit(tenant, kind="erasure")
    response = client.post(
        url(request, "/exception"), json={"point": point, "reason": "x"}, headers=tenant.headers
    )
    assert response.status_code == 422 and "point" in response.json["errors"]["json"]


# -- Art. 19 instructions -----------------------------------------------------------------


def test_an_instruction_is_confirmed_once(client, tenant, queue):
    crm = inventory.create_system(tenant.account, name="CRM", kind="crm", region="eu", actor="t")
    inventory.create_subject(
        tenant.account, name="Ana Lima", email=EMAIL, systems=[crm.public_id], actor="t"
    )
    db.session.commit()
    request_id = opendsr(client, tenant, kind="erasure")
    queue.run()
    detail = client.get(f"/api/v1/requests/{request_id}", headers=tenant.headers).json
    assert detail["status"] == "completed"
    (instruction,) = detail["instructions"]
    assert instruction["target_name"] == "CRM" and instruction["state"] == "pending"
    assert instruction["kind"] == "crm" and instruction["region"] == "eu"
    confirm = f"/api/v1/requests/{request_id}/instructions/{instruction['id']}/confirmation"

    member = client.post(confirm, headers=tenant.token_for("member"))
    assert member.status_code == 403
    done = client.post(confirm, headers=tenant.headers)
    assert done.status_code == 200
    assert done.json["state"] == "confirmed" and done.json["confirmed_at"]
    assert client.post(confirm, headers=tenant.headers).status_code == 409
    unknown = client.post(
        f"/api/v1/requests/{request_id}/instructions/{uuid.uuid4()}/confirmation",
        headers=tenant.headers,
    )
    assert unknown.status_code == 404
