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
    client.put("/api/v1/scrub/settings", json={}, headers=tenant.headers)
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
        response = client.put("/api/v1/scrub/settings", json=body, headers=tenant.headers)
        assert response.status_code == 422, body
        assert field in response.json["errors"]["json"], body


def test_only_admins_change_settings(client, tenant):
    member = tenant.token_for("member")
    assert client.get("/api/v1/scrub/settings", headers=member).status_code == 200
    assert client.put("/api/v1/scrub/settings", json={}, headers=member).status_code == 403
