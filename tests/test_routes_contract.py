"""Route-wide contracts: every route declares a permission, tenants never see each other,
and bad input on every endpoint gets a clear 4xx in the one error shape."""

from __future__ import annotations

import io
import uuid

import pytest
from pypdf import PdfReader

from privacy.database import utcnow
from privacy.dsr import services as dsr
from privacy.dsr.models import ErasureInstruction
from privacy.extensions import db
from privacy.support import services as support
from tests.conftest import Tenant

FRAMEWORK_PUBLIC = {"static", "api-docs.openapi_json", "api-docs.openapi_swagger_ui"}
METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE")

# A plausible body per (method, rule) so that writes get as far as the permission checks.
SAMPLE_BODIES = {
    ("POST", "/api/v1/subjects"): {"name": "Intruder", "email": "intruder@evil.example"},
    ("POST", "/api/v1/subjects/lookup"): None,  # filled with the victim's e-mail below
    ("PATCH", "/api/v1/subjects/<uuid:subject_id>"): {"name": "Hijacked"},
    ("POST", "/api/v1/systems"): {"name": "Evil", "kind": "crm", "region": "eu"},
    ("PATCH", "/api/v1/systems/<uuid:system_id>"): {"name": "Hijacked"},
    ("POST", "/api/v1/members"): {"email": "intruder@evil.example"},
    ("PATCH", "/api/v1/members/<uuid:member_id>"): {"role": "member"},
    ("POST", "/api/v1/tokens"): {"name": "evil"},
    ("POST", "/api/v1/scrub"): {"text": "ping from intruder@evil.example"},
    ("POST", "/api/v1/scrub/reverse"): {"text": "nothing to reverse"},
    ("POST", "/api/v1/requests/<uuid:request_id>/extension"): {"months": 1, "reason": "x"},
    ("POST", "/api/v1/requests/<uuid:request_id>/rejection"): {"reason": "intrusion"},
    ("POST", "/api/v1/requests/<uuid:request_id>/exception"): {"point": "b", "reason": "x"},
    ("POST", "/api/v1/support-grants"): {
        "operator_email": "ops@platform.example",
        "hours": 72,
        "reason": "intrusion",
    },
}
# Routes that accept larger bodies than MAX_CONTENT_LENGTH: (config key, default).
BODY_LIMITS = {"/api/v1/scrub": ("SCRUB_MAX_BODY_BYTES", 16 * 1024 * 1024)}
# Routes whose body is not one JSON document (CSV, JSON lines, plain text).
# Writes that take no body at all.
BODILESS = {
    "/api/v1/members/<uuid:member_id>/invitation",
    "/api/v1/requests/<uuid:request_id>/instructions/<uuid:instruction_id>/confirmation",
}
NON_JSON_BODIES = BODILESS | {
    "/api/v1/subjects/import",
    "/api/v1/scrub/stream",
    "/api/v1/scrub/relay",
}


def api_rules(app):
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1"):
            for method in sorted(rule.methods & set(METHODS)):
                yield method, rule


def test_every_route_declares_its_permission(app):
    undeclared = sorted(
        endpoint
        for endpoint, view in app.view_functions.items()
        if endpoint not in FRAMEWORK_PUBLIC and not getattr(view, "permission", None)
    )
    assert undeclared == []


def seed_victim(client, victim: Tenant) -> dict:
    h = victim.headers
    system = client.post(
        "/api/v1/systems", json={"name": "Victim CRM", "kind": "crm", "region": "eu"}, headers=h
    ).json
    subject = client.post(
        "/api/v1/subjects",
        json={
            "name": "Victoria Victim",
            "email": "victoria@victim.example",
            "external_ref": "v-1",
            "systems": [system["id"]],
        },
        headers=h,
    ).json
    member = client.post(
        "/api/v1/members",
        json={"email": "vic.member@victim.example", "name": "Vic Member"},
        headers=h,
    ).json
    token = client.post("/api/v1/tokens", json={"name": "victim pipeline"}, headers=h).json
    support.create_operator(
        email="ops@platform.example", name="Olga Ops", role="support", actor="t"
    )
    db.session.commit()
    grant = client.post(
        "/api/v1/support-grants",
        json={"operator_email": "ops@platform.example", "hours": 4, "reason": "ticket 7"},
        headers=h,
    ).json
    request = dsr.submit(
        victim.account,
        kind="erasure",
        source="form",
        email="victoria@victim.example",
        actor="system",
    )
    request.instructions.append(
        ErasureInstruction(
            target_ref="system:victim-crm",
            target_name="Victim CRM",
            target_kind="crm",
            region="eu",
            created_at=utcnow(),
        )
    )
    db.session.commit()
    return {
        "subject": subject,
        "system": system,
        "member": member,
        "token": token,
        "grant": grant,
        "request": {"id": str(request.public_id)},
        "instruction": {"id": str(request.instructions[0].public_id)},
    }


def test_no_route_returns_or_changes_another_accounts_data(app, client, tenant, other_tenant):
    victim = seed_victim(client, tenant)
    ids = {
        "subject_id": victim["subject"]["id"],
        "system_id": victim["system"]["id"],
        "member_id": victim["member"]["id"],
        "token_id": victim["token"]["id"],
        "grant_id": victim["grant"]["id"],
        "request_id": victim["request"]["id"],
        "instruction_id": victim["instruction"]["id"],
    }
    secrets = [
        str(tenant.account.public_id),
        tenant.account.name,
        "Victoria Victim",
        "victoria@victim.example",
        "Victim CRM",
        "vic.member@victim.example",
        "Vic Member",
        "admin@acme.example",
        victim["token"]["prefix"],
        *ids.values(),
    ]
    before = client.get("/api/v1/subjects/export", headers=tenant.headers).get_data()

    walked = 0
    for method, rule in api_rules(app):
        url = rule.rule
        for arg in rule.arguments:
            url = url.replace(f"<uuid:{arg}>", ids[arg])
        body = SAMPLE_BODIES.get((method, rule.rule), {})
        if rule.rule == "/api/v1/subjects/lookup":
            body = {"email": "victoria@victim.example"}
        response = client.open(
            url, method=method, json=body if method != "GET" else None, headers=other_tenant.headers
        )
        walked += 1
        assert response.status_code < 500, (method, rule.rule)
        if rule.arguments or rule.rule == "/api/v1/subjects/lookup":
            assert response.status_code == 404, (method, rule.rule, response.status_code)
        if response.mimetype == "application/pdf":  # the account's documents
            pages = PdfReader(io.BytesIO(response.data)).pages
            text = " ".join(page.extract_text() for page in pages)
        else:
            text = response.get_data(as_text=True)
        for secret in secrets:
            assert secret not in text, (method, rule.rule, secret)
    assert walked >= 20

    assert client.get("/api/v1/subjects/export", headers=tenant.headers).get_data() == before
    members = client.get("/api/v1/members", headers=tenant.headers).json
    assert {m["id"] for m in members} >= {victim["member"]["id"]}
    token = client.get(f"/api/v1/tokens/{victim['token']['id']}", headers=tenant.headers).json
    assert token["revoked_at"] is None
    grant = client.get(f"/api/v1/support-grants/{victim['grant']['id']}", headers=tenant.headers)
    assert grant.json["revoked_at"] is None


def json_write_routes(app, tenant_ids: dict):
    for method, rule in api_rules(app):
        if method in ("POST", "PATCH", "PUT") and rule.rule not in NON_JSON_BODIES:
            url = rule.rule
            for arg in rule.arguments:
                url = url.replace(f"<uuid:{arg}>", tenant_ids[arg])
            yield method, rule.rule, url


@pytest.fixture
def own_ids(client, tenant) -> dict:
    seeded = seed_victim(client, tenant)
    return {
        "subject_id": seeded["subject"]["id"],
        "system_id": seeded["system"]["id"],
        "member_id": seeded["member"]["id"],
        "token_id": seeded["token"]["id"],
        "grant_id": seeded["grant"]["id"],
        "request_id": seeded["request"]["id"],
        "instruction_id": seeded["instruction"]["id"],
    }


def assert_error_shape(response, status: int):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.json
    assert body["code"] == status
    assert isinstance(body["status"], str) and body["message"]


def test_malformed_json_is_400_everywhere_saying_where(app, client, tenant, own_ids):
    for method, rule, url in json_write_routes(app, own_ids):
        response = client.open(
            url,
            method=method,
            data='{"name": "x",',
            headers=tenant.headers,
            content_type="application/json",
        )
        assert_error_shape(response, 400)
        message = response.json["message"]
        assert message.startswith("The body is not valid JSON"), (rule, message)
        assert "line 1, column 14" in message, (rule, message)
        assert "browser" not in message


def test_json_sent_as_a_form_is_415_naming_the_type_everywhere(app, client, tenant, own_ids):
    """curl -d sends application/x-www-form-urlencoded: the fields were sent, so "missing
    field" would mislead."""
    for method, rule, url in json_write_routes(app, own_ids):
        for sent_as in ("application/x-www-form-urlencoded", "text/plain"):
            response = client.open(
                url,
                method=method,
                data='{"name": "x"}',
                headers=tenant.headers,
                content_type=sent_as,
            )
            assert_error_shape(response, 415)
            assert "Content-Type: application/json" in response.json["message"], rule
            assert sent_as in response.json["message"]


def test_every_422_reads_the_same(client, tenant):
    """The framework's field check and a service's check answer with one wording."""
    by_schema = client.post("/api/v1/subjects", json={"name": "A"}, headers=tenant.headers)
    by_service = client.post(
        "/api/v1/subjects",
        json={"name": "A", "email": "a@example.org", "systems": [str(uuid.uuid4())]},
        headers=tenant.headers,
    )
    assert by_schema.status_code == by_service.status_code == 422
    assert by_schema.json["message"] == by_service.json["message"] == "The input is not valid."


def test_unknown_fields_are_422_with_field_messages_everywhere(app, client, tenant, own_ids):
    for method, rule, url in json_write_routes(app, own_ids):
        response = client.open(
            url, method=method, json={"definitely_unknown": 1}, headers=tenant.headers
        )
        assert_error_shape(response, 422)
        assert "definitely_unknown" in response.json["errors"]["json"], rule


def test_non_object_json_is_422_everywhere(app, client, tenant, own_ids):
    for method, _rule, url in json_write_routes(app, own_ids):
        response = client.open(url, method=method, json=["a", "list"], headers=tenant.headers)
        assert_error_shape(response, 422)


def test_oversized_body_is_413_everywhere(app, client, tenant, own_ids):
    for method, rule, url in json_write_routes(app, own_ids):
        key, default = BODY_LIMITS.get(rule, ("MAX_CONTENT_LENGTH", None))
        huge = '{"name": "' + "x" * (app.config.get(key, default) + 10) + '"}'
        response = client.open(
            url, method=method, data=huge, headers=tenant.headers, content_type="application/json"
        )
        assert_error_shape(response, 413)


@pytest.mark.parametrize(
    "body,field",
    [
        ({"name": "", "email": "a@example.org"}, "name"),
        ({"name": "x" * 201, "email": "a@example.org"}, "name"),
        ({"name": "Tab\tName", "email": "a@example.org"}, "name"),
        ({"name": "A", "email": "not-an-email"}, "email"),
        ({"name": "A", "email": "a@" + "b" * 260 + ".example"}, "email"),
        ({"name": "A"}, "email"),
        ({"email": "a@example.org"}, "name"),
        ({"name": "A", "email": "a@example.org", "external_ref": "r" * 201}, "external_ref"),
        ({"name": "A", "email": "a@example.org", "systems": ["not-a-uuid"]}, "systems"),
        ({"name": 5, "email": "a@example.org"}, "name"),
    ],
)
def test_subject_validation_messages(client, tenant, body, field):
    response = client.post("/api/v1/subjects", json=body, headers=tenant.headers)
    assert_error_shape(response, 422)
    assert field in response.json["errors"]["json"]


def test_empty_patch_is_422(client, tenant, own_ids):
    response = client.patch(
        f"/api/v1/subjects/{own_ids['subject_id']}", json={}, headers=tenant.headers
    )
    assert_error_shape(response, 422)


def test_unknown_ids_and_non_uuid_paths_are_404(client, tenant):
    for url in (
        "/api/v1/subjects/00000000-0000-4000-8000-000000000000",
        "/api/v1/subjects/not-a-uuid",
        "/api/v1/nowhere",
    ):
        assert_error_shape(client.get(url, headers=tenant.headers), 404)


def test_wrong_method_is_405_in_the_error_shape(client, tenant):
    assert_error_shape(client.put("/api/v1/subjects", json={}, headers=tenant.headers), 405)


def test_tenant_rows_are_only_queried_through_the_account_helper():
    from privacy.paths import ROOT

    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in (ROOT / "privacy").rglob("*.py")
        if path.name != "database.py"
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if "account_id ==" in line
    ]
    assert offenders == []
