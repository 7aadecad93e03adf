"""`flask accounts create` prints one JSON object with the account id and a working token."""

from __future__ import annotations

import json

from tests.conftest import bearer


def test_accounts_create_prints_json_with_working_admin_token(app, client):
    result = app.test_cli_runner().invoke(
        args=["accounts", "create", "Acme GmbH", "--admin", "Admin@Acme.example", "--region", "us"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert set(payload) >= {"account_id", "api_token", "admin_member_id"}
    account = client.get("/api/v1/account", headers=bearer(payload["api_token"]))
    assert account.status_code == 200
    assert account.json["id"] == payload["account_id"]
    assert account.json["region"] == "us"
    members = client.get("/api/v1/members", headers=bearer(payload["api_token"])).json
    assert [(m["email"], m["role"]) for m in members] == [("Admin@Acme.example", "admin")]


def test_accounts_create_rejects_bad_email(app):
    result = app.test_cli_runner().invoke(
        args=["accounts", "create", "X", "--admin", "not-an-email"]
    )
    assert result.exit_code != 0
    assert "e-mail" in result.output.lower()
