"""Per-account scrubber settings: custom patterns, deny and allow lists, opt-in entities."""

from __future__ import annotations

from privacy.audit.models import AuditEvent
from privacy.extensions import db

SETTINGS = {
    "entities": ["UUID"],
    "patterns": {"EMPLOYEE_ID": [r"\bEMP-\d{6}\b"]},
    "deny": {"PERSON": ["Bobby"]},
    "allow": ["support@acme.example"],
}
EMPTY = {"entities": [], "patterns": {}, "deny": {}, "allow": []}
LINE = "EMP-123456 Bobby mailed support@acme.example about job 3f2b8c1e-9a4d-4e7b-8c2a-1d5e6f7a8b9c"


def scrub(client, headers, text=LINE):
    return client.post("/api/v1/scrub", json={"text": text}, headers=headers)


def test_defaults_until_an_admin_changes_them(client, tenant):
    got = client.get("/api/v1/scrub/settings", headers=tenant.headers).json
    assert got["entities"] == [] and got["patterns"] == {} and got["updated_at"] is None
    before = scrub(client, tenant.headers).json["text"]
    assert "EMP-123456" in before and "3f2b8c1e" in before


def test_settings_apply_to_that_account_only(client, tenant, other_tenant):
    saved = client.put("/api/v1/scrub/settings", json=SETTINGS, headers=tenant.headers)
    assert saved.status_code == 200, saved.json
    assert sorted(saved.json["entities"]) == ["EMPLOYEE_ID", "PERSON", "UUID"]
    text = scrub(client, tenant.headers).json["text"]
    assert text == "[EMPLOYEE_ID] [PERSON] mailed support@acme.example about job [UUID]"
    other = scrub(client, other_tenant.headers).json["text"]
    assert "EMP-123456" in other and "3f2b8c1e" in other
    events = db.session.scalars(
        db.select(AuditEvent).where(AuditEvent.action == "scrub.settings_changed")
    ).all()
    assert len(events) == 1 and "EMP" not in str(events[0].data)


def test_changed_settings_take_effect_at_once(client, tenant):
    client.put("/api/v1/scrub/settings", json=SETTINGS, headers=tenant.headers)
    assert "[UUID]" in scrub(client, tenant.headers).json["text"]
    client.put("/api/v1/scrub/settings", json=EMPTY, headers=tenant.headers)
    assert "[UUID]" not in scrub(client, tenant.headers).json["text"]


def test_bad_settings_are_422_with_field_messages(client, tenant):
    cases = [
        ({"patterns": {"EMPLOYEE_ID": ["(unclosed"]}}, "patterns"),
        ({"entities": ["SHOE_SIZE"]}, "entities"),
        ({"entities": ["lower_case"]}, "entities"),
        ({"allow": ["x" * 201]}, "allow"),
        ({"deny": {"PERSON": []}}, "deny"),
        ({"colour": "blue"}, "colour"),
    ]
    for body, field in cases:
        for method, sent in (("PUT", {**EMPTY, **body}), ("PATCH", body)):
            response = client.open(
                "/api/v1/scrub/settings", method=method, json=sent, headers=tenant.headers
            )
            assert response.status_code == 422, (method, body)
            assert field in response.json["errors"]["json"], (method, body)


def test_only_admins_change_settings(client, tenant):
    member = tenant.token_for("member")
    assert client.get("/api/v1/scrub/settings", headers=member).status_code == 200
    assert client.put("/api/v1/scrub/settings", json={}, headers=member).status_code == 403


def test_put_without_a_body_is_refused_and_changes_nothing(client, tenant):
    client.put("/api/v1/scrub/settings", json=SETTINGS, headers=tenant.headers)
    before = client.get("/api/v1/scrub/settings", headers=tenant.headers).json

    for body in (None, {}, {"allow": []}):
        if body is None:
            response = client.put("/api/v1/scrub/settings", headers=tenant.headers)
        else:
            response = client.put("/api/v1/scrub/settings", json=body, headers=tenant.headers)
        assert response.status_code == 422, body
        assert response.json["code"] == 422
        missing = set(response.json["errors"]["json"])
        assert missing == {"entities", "patterns", "deny", "allow"} - set(body or {})

    assert client.get("/api/v1/scrub/settings", headers=tenant.headers).json == before
    assert scrub(client, tenant.headers).json["text"].startswith("[EMPLOYEE_ID] [PERSON]")


def test_patch_changes_only_what_it_names(client, tenant):
    client.put("/api/v1/scrub/settings", json=SETTINGS, headers=tenant.headers)
    before = client.get("/api/v1/scrub/settings", headers=tenant.headers).json

    response = client.patch(
        "/api/v1/scrub/settings", json={"allow": ["ops@acme.example"]}, headers=tenant.headers
    )

    assert response.status_code == 200, response.json
    after = response.json
    assert after["allow"] == ["ops@acme.example"]
    for field in ("entities", "patterns", "deny"):
        assert after[field] == before[field], field
    assert after == client.get("/api/v1/scrub/settings", headers=tenant.headers).json
    events = db.session.scalars(
        db.select(AuditEvent).where(AuditEvent.action == "scrub.settings_changed")
    ).all()
    assert events[-1].data["changed"] == ["allow"]


def test_patch_removing_patterns_drops_their_entity_and_keeps_the_rest(client, tenant):
    client.put("/api/v1/scrub/settings", json=SETTINGS, headers=tenant.headers)

    response = client.patch("/api/v1/scrub/settings", json={"patterns": {}}, headers=tenant.headers)

    assert response.status_code == 200, response.json
    assert response.json["patterns"] == {}
    assert sorted(response.json["entities"]) == ["PERSON", "UUID"]
    assert response.json["deny"] == SETTINGS["deny"]
    text = scrub(client, tenant.headers).json["text"]
    assert text == "EMP-123456 [PERSON] mailed support@acme.example about job [UUID]"


def test_patch_without_anything_to_change_is_422(client, tenant):
    for body in (None, {}):
        kwargs = {} if body is None else {"json": body}
        response = client.patch("/api/v1/scrub/settings", headers=tenant.headers, **kwargs)
        assert response.status_code == 422
    assert client.get("/api/v1/scrub/settings", headers=tenant.headers).json["updated_at"] is None


def test_only_admins_patch_settings(client, tenant):
    member = tenant.token_for("member")
    response = client.patch("/api/v1/scrub/settings", json={"allow": ["x"]}, headers=member)
    assert response.status_code == 403
