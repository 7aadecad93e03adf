"""Inventory API: create, read, update, delete, lookup, pagination, validation errors."""

from __future__ import annotations

import uuid

from tests.conftest import Tenant


def create(client, tenant: Tenant, **overrides):
    body = {"name": "Zoë Müller", "email": "Zoe.Mueller@Example.org", **overrides}
    return client.post("/api/v1/subjects", json=body, headers=tenant.headers)


def test_create_keeps_the_email_as_given_and_returns_subject(client, tenant):
    response = create(client, tenant, external_ref="cust-42", source="signup")
    assert response.status_code == 201, response.json
    body = response.json
    assert body["email"] == "Zoe.Mueller@Example.org"
    assert body["name"] == "Zoë Müller"
    assert body["external_ref"] == "cust-42"
    assert uuid.UUID(body["id"])
    fetched = client.get(f"/api/v1/subjects/{body['id']}", headers=tenant.headers)
    assert fetched.status_code == 200
    assert fetched.json == body


def test_lookup_finds_an_address_whatever_its_case(client, tenant):
    created = create(client, tenant).json
    for spelling in ("zoe.mueller@example.org", "ZOE.MUELLER@EXAMPLE.ORG"):
        found = client.post(
            "/api/v1/subjects/lookup", json={"email": spelling}, headers=tenant.headers
        )
        assert found.status_code == 200 and found.json["id"] == created["id"]
        assert found.json["email"] == "Zoe.Mueller@Example.org"


def test_same_email_twice_in_one_account_is_409(client, tenant):
    assert create(client, tenant).status_code == 201
    again = create(client, tenant, email="ZOE.MUELLER@example.org", name="Other")
    assert again.status_code == 409
    assert again.json["code"] == 409
    assert "message" in again.json


def test_same_email_in_two_accounts_is_allowed(client, tenant, other_tenant):
    assert create(client, tenant).status_code == 201
    assert create(client, other_tenant).status_code == 201


def test_lookup_by_email_in_body(client, tenant):
    created = create(client, tenant).json
    found = client.post(
        "/api/v1/subjects/lookup",
        json={"email": " zoe.MUELLER@example.org "},
        headers=tenant.headers,
    )
    assert found.status_code == 200
    assert found.json["id"] == created["id"]
    missing = client.post(
        "/api/v1/subjects/lookup", json={"email": "nobody@example.org"}, headers=tenant.headers
    )
    assert missing.status_code == 404
    assert missing.json["status"] == "Not Found"


def test_update_changes_email_and_keeps_lookup_working(client, tenant):
    subject = create(client, tenant).json
    response = client.patch(
        f"/api/v1/subjects/{subject['id']}",
        json={"email": "zoe@new.example", "name": "Zoë M."},
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.json
    assert response.json["email"] == "zoe@new.example"
    assert (
        client.post(
            "/api/v1/subjects/lookup", json={"email": "zoe@new.example"}, headers=tenant.headers
        ).status_code
        == 200
    )
    assert (
        client.post(
            "/api/v1/subjects/lookup",
            json={"email": "zoe.mueller@example.org"},
            headers=tenant.headers,
        ).status_code
        == 404
    )


def test_update_to_an_email_already_taken_is_409(client, tenant):
    create(client, tenant)
    second = create(client, tenant, email="b@example.org").json
    response = client.patch(
        f"/api/v1/subjects/{second['id']}",
        json={"email": "zoe.mueller@example.org"},
        headers=tenant.headers,
    )
    assert response.status_code == 409


def test_delete_then_404(client, tenant):
    subject = create(client, tenant).json
    assert (
        client.delete(f"/api/v1/subjects/{subject['id']}", headers=tenant.headers).status_code
        == 204
    )
    assert (
        client.get(f"/api/v1/subjects/{subject['id']}", headers=tenant.headers).status_code == 404
    )


def test_cursor_pagination_walks_every_subject_once(client, tenant):
    emails = {f"user{i}@example.org" for i in range(7)}
    for email in sorted(emails):
        assert create(client, tenant, email=email).status_code == 201
    seen, cursor = [], None
    while True:
        query = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/subjects", query_string=query, headers=tenant.headers).json
        seen += [item["email"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(emails)
    assert len(seen) == len(emails)


def test_bad_cursor_is_422(client, tenant):
    response = client.get(
        "/api/v1/subjects", query_string={"cursor": "garbage!"}, headers=tenant.headers
    )
    assert response.status_code == 422


def test_systems_and_holdings(client, tenant):
    crm = client.post(
        "/api/v1/systems",
        json={"name": "CRM", "kind": "crm", "region": "eu"},
        headers=tenant.headers,
    )
    assert crm.status_code == 201, crm.json
    crm_id = crm.json["id"]
    subject = create(client, tenant, systems=[crm_id]).json
    assert subject["systems"] == [crm_id]
    other = create(client, tenant, email="x@example.org").json
    held = client.get(
        "/api/v1/subjects", query_string={"system": crm_id}, headers=tenant.headers
    ).json
    assert [s["id"] for s in held["items"]] == [subject["id"]]
    cleared = client.patch(
        f"/api/v1/subjects/{subject['id']}", json={"systems": []}, headers=tenant.headers
    )
    assert cleared.json["systems"] == []
    assert other["systems"] == []


def test_unknown_system_is_422(client, tenant):
    response = create(client, tenant, systems=[str(uuid.uuid4())])
    assert response.status_code == 422
    assert "systems" in response.json["errors"]["json"]


def test_duplicate_system_name_is_409(client, tenant):
    body = {"name": "CRM", "kind": "crm", "region": "eu"}
    assert client.post("/api/v1/systems", json=body, headers=tenant.headers).status_code == 201
    assert client.post("/api/v1/systems", json=body, headers=tenant.headers).status_code == 409
