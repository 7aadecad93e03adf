"""The OpenDSR API: discovery, requests, status, cancellation, signatures, errors."""

from __future__ import annotations

import base64
import json
import os
import threading
import uuid
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from dateutil.relativedelta import relativedelta
from sqlalchemy import select
from sqlalchemy import update

from privacy.dsr import services
from privacy.dsr import signing
from privacy.dsr.models import DataSubjectRequest
from privacy.extensions import db
from privacy.inventory import services as inventory

EMAIL = "ana.lima@example.org"
# Two weeks ago at 10:00 UTC: recent enough to be taken, fixed enough to check the due date.
SUBMITTED = (datetime.now(UTC) - timedelta(days=14)).replace(hour=10, minute=0, second=0)


def body(kind: str = "access", **extra) -> dict:
    return {
        "regulation": "gdpr",
        "subject_request_id": str(uuid.uuid4()),
        "subject_request_type": kind,
        "submitted_time": SUBMITTED.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "subject_identities": [
            {"identity_type": "email", "identity_value": EMAIL, "identity_format": "raw"}
        ],
        **extra,
    }


@pytest.fixture
def subject(tenant):
    created = inventory.create_subject(tenant.account, name="Ana Lima", email=EMAIL, actor="t")
    db.session.commit()
    return created


@pytest.fixture
def paused(queue):
    """Requests stay pending: their jobs stay queued, the test never runs them."""
    return queue


def verify(response) -> None:
    certificate = signing.get().certificate_pem
    signature = response.headers["X-OpenDSR-Signature"]
    assert signing.verify(certificate, response.get_data(), signature)
    assert response.headers["X-OpenGDPR-Signature"] == signature
    assert response.headers["X-OpenDSR-Processor-Domain"] == "127.0.0.1"


def test_discovery_names_identities_types_and_the_certificate(client):
    response = client.get("/opendsr/v1/discovery")

    assert response.status_code == 200
    verify(response)
    assert response.json["api_version"] == "2.0"
    assert {"identity_type": "email", "identity_format": "sha256"} in response.json[
        "supported_identities"
    ]
    assert response.json["supported_subject_request_types"] == ["access", "portability", "erasure"]
    certificate = client.get("/opendsr/v1/certificate")
    assert certificate.data.startswith(b"-----BEGIN CERTIFICATE-----")
    assert response.json["processor_certificate"].endswith("/opendsr/v1/certificate")
    assert client.get("/discovery").json == response.json  # legacy path


def test_a_request_is_taken_signed_and_completed(client, tenant, subject, queue):
    sent = body()
    raw = json.dumps(sent).encode()
    response = client.post(
        "/opendsr/v1/requests", data=raw, headers=tenant.headers, content_type="application/json"
    )

    assert response.status_code == 201
    verify(response)
    answer = response.json
    assert answer["subject_request_id"] == sent["subject_request_id"]
    assert answer["controller_id"] == str(tenant.account.public_id)
    due = SUBMITTED + relativedelta(months=1)
    assert answer["expected_completion_time"] == due.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert base64.b64decode(answer["encoded_request"]) == raw
    assert signing.verify(signing.get().certificate_pem, raw, answer["processor_signature"])
    path = f"/opendsr/v1/requests/{sent['subject_request_id']}"
    assert client.get(path, headers=tenant.headers).json["request_status"] == "pending"
    assert queue.names() == ["dsr.process"]  # the worker's part, queued after the commit
    queue.run()
    status = client.get(path, headers=tenant.headers)
    verify(status)
    assert status.json["request_status"] == "completed"
    assert status.json["results_count"] == 2
    assert status.json["results_url"].startswith("http://127.0.0.1:")
    assert EMAIL not in status.get_data(as_text=True)


def test_sha256_and_customer_id_identities_find_the_subject(client, tenant, subject, queue):
    digest = inventory.email_hash(EMAIL)
    hashed = body(
        subject_identities=[
            {
                "identity_type": "email",
                "identity_value": digest.upper(),
                "identity_format": "sha256",
            }
        ]
    )
    client.post("/opendsr/v1/requests", json=hashed, headers=tenant.headers)
    queue.run()
    request = services.get_by_subject_request_id(
        tenant.account, uuid.UUID(hashed["subject_request_id"])
    )
    assert request.status == "completed" and request.no_data_held is False

    subject.external_ref = "cust-42"
    db.session.commit()
    by_ref = body(
        subject_identities=[
            {"identity_type": "controller_customer_id", "identity_value": "cust-42"}
        ]
    )
    client.post("/opendsr/v1/requests", json=by_ref, headers=tenant.headers)
    queue.run()
    request = services.get_by_subject_request_id(
        tenant.account, uuid.UUID(by_ref["subject_request_id"])
    )
    assert request.no_data_held is False and request.subject_ref == subject.public_id


def test_the_same_subject_request_id_twice_is_409_pointing_to_the_first(client, tenant, paused):
    sent = body()
    client.post("/opendsr/v1/requests", json=sent, headers=tenant.headers)
    again = client.post("/opendsr/v1/requests", json=sent, headers=tenant.headers)

    assert again.status_code == 409
    assert again.json["error"]["subject_request_id"] == sent["subject_request_id"]
    assert again.headers["Location"] == f"/opendsr/v1/requests/{sent['subject_request_id']}"


@pytest.mark.parametrize(
    "change,reason",
    [
        ({"subject_request_type": "rectification"}, "unsupported_request_type"),
        ({"subject_request_id": "not-a-uuid"}, "invalid_subject_request_id"),
        ({"subject_request_id": str(uuid.uuid1())}, "invalid_subject_request_id"),
        ({"submitted_time": "yesterday"}, "invalid_submitted_time"),
        ({"submitted_time": "2999-01-01T00:00:00Z"}, "invalid_submitted_time"),
        # Overdue on arrival: older than the longest legal deadline (3 months).
        ({"submitted_time": "0001-01-01T00:00:00+14:00"}, "invalid_submitted_time"),
        ({"submitted_time": "9999-12-31T23:59:59-12:00"}, "invalid_submitted_time"),
        ({"submitted_time": "2020-01-01T00:00:00Z"}, "invalid_submitted_time"),
        (
            {
                "subject_identities": [
                    {"identity_type": "email", "identity_value": "ana at example"}
                ]
            },
            "invalid_identity",
        ),
        (
            {
                "subject_identities": [
                    {
                        "identity_type": "email",
                        "identity_value": "ab12",
                        "identity_format": "sha256",
                    }
                ]
            },
            "invalid_identity",
        ),
        (
            {
                "subject_identities": [
                    {"identity_type": "email", "identity_value": "x", "identity_format": "md5"}
                ]
            },
            "unsupported_identity",
        ),
        ({"subject_identities": []}, "invalid_identity"),
        ({"status_callback_urls": ["ftp://example.org/x"]}, "invalid_status_callback_url"),
        ({"status_callback_urls": ["http://[::1"]}, "invalid_status_callback_url"),
        ({"regulation": "ccpa"}, "unsupported_regulation"),
    ],
)
def test_bad_input_is_400_in_the_spec_shape_without_the_identity(client, tenant, change, reason):
    sent = {**body(), **change}
    response = client.post("/opendsr/v1/requests", json=sent, headers=tenant.headers)

    assert response.status_code == 400
    verify(response)
    error = response.json["error"]
    assert error["code"] == 400
    assert reason in [e["reason"] for e in error["errors"]]
    assert all(e["domain"] == "OpenDSR" for e in error["errors"])
    text = response.get_data(as_text=True)
    assert EMAIL not in text and "ana at example" not in text
    assert services.list_requests(tenant.account) == []


def test_malformed_json_is_400(client, tenant):
    response = client.post(
        "/opendsr/v1/requests", data="{", headers=tenant.headers, content_type="application/json"
    )
    assert (
        response.status_code == 400
        and response.json["error"]["errors"][0]["reason"] == "invalid_json"
    )


def test_cancel_while_pending_is_202_and_later_409(client, tenant, paused):
    sent = body()
    client.post("/opendsr/v1/requests", json=sent, headers=tenant.headers)
    url = f"/opendsr/v1/requests/{sent['subject_request_id']}"

    cancelled = client.delete(url, headers=tenant.headers)
    assert cancelled.status_code == 202
    verify(cancelled)
    assert cancelled.json["subject_request_id"] == sent["subject_request_id"]
    assert client.get(url, headers=tenant.headers).json["request_status"] == "cancelled"
    assert client.delete(url, headers=tenant.headers).status_code == 409


def test_cancelling_a_request_in_progress_is_409(client, tenant, paused):
    sent = body()
    client.post("/opendsr/v1/requests", json=sent, headers=tenant.headers)
    request = services.get_by_subject_request_id(
        tenant.account, uuid.UUID(sent["subject_request_id"])
    )
    services.transition(tenant.account, request, "in_progress", actor="t")
    db.session.commit()

    response = client.delete(
        f"/opendsr/v1/requests/{sent['subject_request_id']}", headers=tenant.headers
    )
    assert response.status_code == 409
    assert response.json["error"]["code"] == 409


@pytest.mark.skipif(
    not os.environ.get("PRIVACY_TEST_DATABASE_URL"),
    reason="row locks: on SQLite a DELETE holds the database's write lock from its start",
)
def test_a_cancel_waits_for_a_worker_holding_the_request_and_then_is_409(
    app, client, tenant, paused
):
    sent = body("erasure")
    client.post("/opendsr/v1/requests", json=sent, headers=tenant.headers)
    request_id = services.get_by_subject_request_id(
        tenant.account, uuid.UUID(sent["subject_request_id"])
    ).id
    db.session.commit()
    locked, release = threading.Event(), threading.Event()

    def worker_starts_it():  # as a batch does: lock, move to in_progress, commit
        with app.app_context():
            table = DataSubjectRequest.__table__
            db.session.execute(select(table.c.id).where(table.c.id == request_id).with_for_update())
            db.session.execute(
                update(table).where(table.c.id == request_id).values(status="in_progress")
            )
            locked.set()
            release.wait(5)
            db.session.commit()
            db.session.remove()

    worker = threading.Thread(target=worker_starts_it)
    worker.start()
    assert locked.wait(5)
    threading.Timer(0.5, release.set).start()
    response = client.delete(
        f"/opendsr/v1/requests/{sent['subject_request_id']}", headers=tenant.headers
    )
    worker.join()

    # It read the request after the worker's commit, not before: no cancel over work begun.
    assert response.status_code == 409
    db.session.commit()
    assert db.session.get(DataSubjectRequest, request_id).status == "in_progress"


def test_another_accounts_request_is_404_and_a_bad_id_400(client, tenant, other_tenant, paused):
    sent = body()
    client.post("/opendsr/v1/requests", json=sent, headers=tenant.headers)
    url = f"/opendsr/v1/requests/{sent['subject_request_id']}"

    assert client.get(url, headers=other_tenant.headers).status_code == 404
    assert client.delete(url, headers=other_tenant.headers).status_code == 404
    assert client.get("/opendsr/v1/requests/nope", headers=tenant.headers).status_code == 400


def test_legacy_opengdpr_paths(client, tenant, paused):
    sent = body()
    assert client.post("/opengdpr_requests", json=sent, headers=tenant.headers).status_code == 201
    status = client.get(f"/opengdpr_requests/{sent['subject_request_id']}", headers=tenant.headers)
    assert status.json["request_status"] == "pending"
    assert (
        client.delete(
            f"/opengdpr_requests/{sent['subject_request_id']}", headers=tenant.headers
        ).status_code
        == 202
    )


def test_tokens_need_the_requests_scope(client, tenant, paused):
    assert client.post("/opendsr/v1/requests", json=body()).status_code == 401
    scrub_only = tenant.token_for("member", scopes=["scrub"])
    refused = client.post("/opendsr/v1/requests", json=body(), headers=scrub_only)
    assert refused.status_code == 403 and refused.json["error"]["code"] == 403
    narrowed = tenant.token_for("member", scopes=["requests"])
    assert client.post("/opendsr/v1/requests", json=body(), headers=narrowed).status_code == 201


def test_no_data_held_completes_rather_than_fails(client, tenant, queue):
    sent = body()
    client.post("/opendsr/v1/requests", json=sent, headers=tenant.headers)
    queue.run()
    request = services.get_by_subject_request_id(
        tenant.account, uuid.UUID(sent["subject_request_id"])
    )
    assert request.status == "completed" and request.no_data_held is True


def test_history_and_audit_record_every_step(client, tenant, subject, queue):
    sent = body()
    client.post("/opendsr/v1/requests", json=sent, headers=tenant.headers)
    queue.run()
    request = services.get_by_subject_request_id(
        tenant.account, uuid.UUID(sent["subject_request_id"])
    )
    assert [e.action for e in request.events] == [
        "received",
        "verified",
        "in_progress",
        "completed",
    ]
    audit = client.get("/api/v1/audit", headers=tenant.headers).json["items"]
    actions = [e["action"] for e in audit if e["object_id"] == str(request.public_id)]
    assert actions[::-1][:4] == ["dsr.received", "dsr.verified", "dsr.in_progress", "dsr.completed"]
