"""The scrubbing API: forms, modes, per-account keys, reversal with audit, limits, streaming."""

from __future__ import annotations

import base64
import io
import json
import logging

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from privacy.scrubber import services
from tests.conftest import TEST_INDEX_KEY

SCRUB = "/api/v1/scrub"
STREAM = "/api/v1/scrub/stream"
REVERSE = "/api/v1/scrub/reverse"
NDJSON = "application/x-ndjson"

LINE = "login ok for m.rossi@posteo.it from 203.0.113.77"
JSON_LINE = '{"event":"signup","user":"Agnieszka Kowalczyk","email":"kim@proton.me","n":1}'


def scrub(client, tenant, **body):
    response = client.post(SCRUB, json=body, headers=tenant.headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.json


def stream(client, headers, lines: list[str], query: str = ""):
    return client.post(
        STREAM + query, data="\n".join(lines) + "\n", headers=headers, content_type=NDJSON
    )


def ndjson(response) -> list[dict]:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == NDJSON
    return [json.loads(line) for line in response.get_data(as_text=True).splitlines()]


def audit_actions(client, tenant) -> list[tuple[str, dict | None]]:
    items = client.get("/api/v1/audit", headers=tenant.headers).json["items"]
    return [(e["action"], e["data"]) for e in items if e["action"].startswith("scrub.")]


# -- the JSON endpoint -------------------------------------------------------------------


def test_text_is_scrubbed_with_findings_at_offsets_into_the_input(client, tenant):
    body = scrub(client, tenant, text=LINE)

    assert body["text"] == "login ok for [EMAIL_ADDRESS] from [IP_ADDRESS]"
    found = [(f["entity_type"], LINE[f["start"] : f["end"]]) for f in body["findings"]]
    assert found == [("EMAIL_ADDRESS", "m.rossi@posteo.it"), ("IP_ADDRESS", "203.0.113.77")]
    assert all(0 < f["score"] <= 1 for f in body["findings"])
    assert set(body) == {"text", "findings"}


def test_lines_come_back_in_order_with_offsets_into_each_line(client, tenant):
    lines = [LINE, "nothing personal here", "sms to +44 7911 123456 failed", ""]
    body = scrub(client, tenant, lines=lines)

    assert set(body) == {"lines"}
    assert [item["text"] for item in body["lines"]] == [
        "login ok for [EMAIL_ADDRESS] from [IP_ADDRESS]",
        "nothing personal here",
        "sms to [PHONE_NUMBER] failed",
        "",
    ]
    assert body["lines"][1]["findings"] == [] and body["lines"][3]["findings"] == []
    phone = body["lines"][2]["findings"][0]
    assert lines[2][phone["start"] : phone["end"]] == "+44 7911 123456"


def test_findings_false_leaves_them_out(client, tenant):
    assert scrub(client, tenant, text=LINE, findings=False) == {
        "text": "login ok for [EMAIL_ADDRESS] from [IP_ADDRESS]"
    }
    body = scrub(client, tenant, lines=[LINE], findings=False)
    assert body == {"lines": [{"text": "login ok for [EMAIL_ADDRESS] from [IP_ADDRESS]"}]}


@pytest.mark.parametrize(
    "mode,expected",
    [
        ("redact", "login ok for [EMAIL_ADDRESS] from [IP_ADDRESS]"),
        ("mask", "login ok for *************o.it from *********.77"),
    ],
)
def test_unkeyed_modes(client, tenant, mode, expected):
    assert scrub(client, tenant, text=LINE, mode=mode)["text"] == expected


def test_pseudonym_mode_is_stable_across_requests_and_differs_between_accounts(
    client, tenant, other_tenant
):
    first = scrub(client, tenant, text=LINE, mode="pseudonym")["text"]
    again = scrub(client, tenant, lines=[LINE], mode="pseudonym")["lines"][0]["text"]
    other = scrub(client, other_tenant, text=LINE, mode="pseudonym")["text"]

    assert first.startswith("login ok for <EMAIL_ADDRESS:") and "posteo" not in first
    assert first == again
    assert other != first and other.startswith("login ok for <EMAIL_ADDRESS:")


def test_token_mode_hides_the_value_and_is_deterministic(client, tenant):
    token = scrub(client, tenant, text=LINE, mode="token")
    assert token["text"].startswith("login ok for <EMAIL_ADDRESS~")
    assert "m.rossi" not in token["text"] and "203.0.113.77" not in token["text"]
    assert scrub(client, tenant, text=LINE, mode="token")["text"] == token["text"]
    assert [f["entity_type"] for f in token["findings"]] == ["EMAIL_ADDRESS", "IP_ADDRESS"]


@pytest.mark.parametrize("mode", ["redact", "mask", "pseudonym", "token"])
def test_json_lines_stay_valid_json(client, tenant, mode):
    body = scrub(client, tenant, lines=[JSON_LINE], mode=mode)
    scrubbed = json.loads(body["lines"][0]["text"])

    assert list(scrubbed) == ["event", "user", "email", "n"]
    assert scrubbed["event"] == "signup" and scrubbed["n"] == 1
    assert "Kowalczyk" not in scrubbed["user"] and "kim@proton.me" != scrubbed["email"]


# -- per-account keys --------------------------------------------------------------------


def test_account_keys_are_hkdf_of_the_index_key_and_the_account_id(app, tenant, other_tenant):
    def expected(purpose: str, length: int, account) -> bytes:
        info = f"scrub-{purpose}:{account.public_id}".encode()
        hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info)
        return hkdf.derive(base64.b64decode(TEST_INDEX_KEY))

    for account in (tenant.account, other_tenant.account):
        assert services.account_key(account, "pseudonym") == expected("pseudonym", 32, account)
        assert services.account_key(account, "token") == expected("token", 64, account)
    assert services.account_key(tenant.account, "token") != services.account_key(
        other_tenant.account, "token"
    )


def test_rotating_the_index_key_changes_pseudonyms_and_strands_tokens(
    app, client, tenant, monkeypatch
):
    pseudonym = scrub(client, tenant, text=LINE, mode="pseudonym")["text"]
    token = scrub(client, tenant, text=LINE, mode="token")["text"]

    monkeypatch.setitem(app.config, "INDEX_KEY", base64.b64encode(b"\x03" * 32).decode())

    assert scrub(client, tenant, text=LINE, mode="pseudonym")["text"] != pseudonym
    assert client.post(REVERSE, json={"text": token}, headers=tenant.headers).status_code == 422


def test_the_scrubber_is_built_once_per_process(client, tenant):
    scrub(client, tenant, text=LINE)
    assert services.get_scrubber() is services.get_scrubber()


# -- reversal ----------------------------------------------------------------------------


def test_admin_reverses_tokens_and_the_call_is_audited(client, tenant):
    lines = [LINE, JSON_LINE]
    tokens = scrub(client, tenant, lines=lines, mode="token")["lines"]
    text = "\n".join(item["text"] for item in tokens)
    count = sum(len(item["findings"]) for item in tokens)

    response = client.post(REVERSE, json={"text": text}, headers=tenant.headers)

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json == {"text": "\n".join(lines), "reversed": count}
    assert count == 4 and text.count("~") == count
    assert audit_actions(client, tenant) == [("scrub.reversed", {"tokens": count})]


def test_text_without_tokens_reverses_to_itself_and_is_audited(client, tenant):
    response = client.post(REVERSE, json={"text": "no tokens here"}, headers=tenant.headers)

    assert response.json == {"text": "no tokens here", "reversed": 0}
    assert audit_actions(client, tenant) == [("scrub.reversed", {"tokens": 0})]


def test_another_accounts_token_is_422_and_the_refusal_is_audited(client, tenant, other_tenant):
    token = scrub(client, tenant, text=LINE, mode="token")["text"]

    response = client.post(REVERSE, json={"text": token}, headers=other_tenant.headers)

    assert response.status_code == 422
    assert response.json["code"] == 422
    assert "does not decrypt with this account's key" in response.json["message"]
    assert "m.rossi" not in response.get_data(as_text=True)
    assert audit_actions(client, other_tenant) == [("scrub.reverse_refused", {"tokens": 2})]
    assert audit_actions(client, tenant) == []


def test_an_altered_token_is_422(client, tenant):
    token = scrub(client, tenant, text="mail kim@proton.me", mode="token")["text"]
    altered = token.replace("~", "~A", 1)

    response = client.post(REVERSE, json={"text": altered}, headers=tenant.headers)

    assert response.status_code == 422
    assert audit_actions(client, tenant) == [("scrub.reverse_refused", {"tokens": 1})]


# -- who may call ------------------------------------------------------------------------


def test_a_token_needs_the_scrub_scope(client, tenant):
    inventory_only = tenant.token_for("member", scopes=["inventory"])
    scrub_only = tenant.token_for("member", scopes=["scrub"])

    assert client.post(SCRUB, json={"text": LINE}, headers=inventory_only).status_code == 403
    assert stream(client, inventory_only, [json.dumps(LINE)]).status_code == 403
    assert client.post(SCRUB, json={"text": LINE}, headers=scrub_only).status_code == 200
    assert len(ndjson(stream(client, scrub_only, [json.dumps(LINE)]))) == 1


def test_reversal_needs_an_admin(client, tenant):
    token = scrub(client, tenant, text=LINE, mode="token")["text"]
    member = tenant.token_for("member")
    scrub_admin = tenant.token_for("admin", scopes=["scrub"])
    inventory_admin = tenant.token_for("admin", scopes=["inventory"])

    assert client.post(REVERSE, json={"text": token}, headers=member).status_code == 403
    assert client.post(REVERSE, json={"text": token}, headers=inventory_admin).status_code == 403
    assert client.post(REVERSE, json={"text": token}, headers=scrub_admin).status_code == 200


@pytest.mark.parametrize("url", [SCRUB, STREAM, REVERSE])
def test_no_token_is_401(client, url):
    response = client.post(url, json={"text": LINE})
    assert response.status_code == 401
    assert response.json["code"] == 401


# -- limits and validation ---------------------------------------------------------------


def test_more_than_10000_lines_is_413(client, tenant):
    response = client.post(SCRUB, json={"lines": ["x"] * 10_001}, headers=tenant.headers)
    assert response.status_code == 413
    assert "10,000" in response.json["message"]
    assert client.post(SCRUB, json={"lines": ["x"] * 10_000}, headers=tenant.headers).json


def test_a_body_over_the_scrub_limit_is_413(client, tenant):
    huge = json.dumps({"text": "x" * (16 * 1024 * 1024)})
    response = client.post(
        SCRUB, data=huge, headers=tenant.headers, content_type="application/json"
    )
    assert response.status_code == 413
    assert response.json["code"] == 413


def test_the_scrub_limit_is_configurable_and_above_the_app_wide_one(
    app, client, tenant, monkeypatch
):
    body = {"text": "x" * (app.config["MAX_CONTENT_LENGTH"] + 10)}
    assert client.post(SCRUB, json=body, headers=tenant.headers).status_code == 200

    monkeypatch.setitem(app.config, "SCRUB_MAX_BODY_BYTES", 1000)

    assert client.post(SCRUB, json={"text": "x" * 1000}, headers=tenant.headers).status_code == 413
    assert stream(client, tenant.headers, ['"x"'] * 500).status_code == 413


@pytest.mark.parametrize(
    "body,field",
    [
        ({"text": "a", "lines": ["b"]}, "_schema"),
        ({}, "_schema"),
        ({"mode": "token"}, "_schema"),
        ({"lines": ["ok", 5]}, "lines"),
        ({"lines": ["ok", None]}, "lines"),
        ({"lines": "not a list"}, "lines"),
        ({"text": 5}, "text"),
        ({"text": "a", "mode": "shout"}, "mode"),
        ({"text": "a", "unknown": 1}, "unknown"),
    ],
)
def test_bad_shapes_are_422_with_field_messages(client, tenant, body, field):
    response = client.post(SCRUB, json=body, headers=tenant.headers)
    assert response.status_code == 422
    assert field in response.json["errors"]["json"]


def test_malformed_json_is_400(client, tenant):
    response = client.post(
        SCRUB, data='{"text": ', headers=tenant.headers, content_type="application/json"
    )
    assert response.status_code == 400


def test_reverse_needs_text(client, tenant):
    response = client.post(REVERSE, json={}, headers=tenant.headers)
    assert response.status_code == 422
    assert "text" in response.json["errors"]["json"]
    assert audit_actions(client, tenant) == []


def test_request_text_never_reaches_the_logs(client, tenant, caplog):
    caplog.set_level(logging.DEBUG)
    scrub(client, tenant, text=LINE, mode="token")
    stream(client, tenant.headers, [json.dumps(LINE), "not json m.rossi@posteo.it"]).get_data()
    client.post(REVERSE, json={"text": "<EMAIL_ADDRESS~AAAAAAAAAAAAAAAAAAAAAAAA>"})

    assert "m.rossi" not in caplog.text and "203.0.113.77" not in caplog.text


# -- streaming ---------------------------------------------------------------------------


def test_stream_answers_one_object_per_line_in_order(client, tenant):
    lines = [json.dumps(LINE), json.dumps({"text": "sms to +44 7911 123456"}), json.dumps("")]
    results = ndjson(stream(client, tenant.headers, lines))

    assert [r["text"] for r in results] == [
        "login ok for [EMAIL_ADDRESS] from [IP_ADDRESS]",
        "sms to [PHONE_NUMBER]",
        "",
    ]
    first = results[0]["findings"][0]
    assert LINE[first["start"] : first["end"]] == "m.rossi@posteo.it"


def test_stream_of_2000_lines_keeps_order_and_scrubs_in_chunks(client, tenant, monkeypatch):
    batches = []
    scrub_batch = services.scrub_batch

    def counting(lines, operator, scrubber=None, **options):
        batches.append(len(lines))
        return scrub_batch(lines, operator, scrubber, **options)

    monkeypatch.setattr(services, "scrub_batch", counting)
    lines = [json.dumps(f"request {i} by user{i}@example.com") for i in range(2000)]

    results = ndjson(stream(client, tenant.headers, lines, "?findings=false"))

    assert results == [{"text": f"request {i} by [EMAIL_ADDRESS]"} for i in range(2000)]
    assert batches == [512, 512, 512, 464]


def test_stream_modes_come_from_the_query_string(client, tenant):
    lines = [json.dumps(LINE)]
    pseudonym = ndjson(stream(client, tenant.headers, lines, "?mode=pseudonym"))[0]["text"]
    assert pseudonym == scrub(client, tenant, text=LINE, mode="pseudonym")["text"]

    token = ndjson(stream(client, tenant.headers, lines, "?mode=token"))[0]["text"]
    reversed_ = client.post(REVERSE, json={"text": token}, headers=tenant.headers).json
    assert reversed_ == {"text": LINE, "reversed": 2}


@pytest.mark.parametrize("mode", ["redact", "mask", "pseudonym", "token"])
def test_stream_keeps_json_log_lines_valid_json(client, tenant, mode):
    results = ndjson(stream(client, tenant.headers, [json.dumps(JSON_LINE)], f"?mode={mode}"))
    scrubbed = json.loads(results[0]["text"])
    assert list(scrubbed) == ["event", "user", "email", "n"]
    assert "Kowalczyk" not in scrubbed["user"]


def test_a_bad_stream_line_answers_an_error_and_the_stream_goes_on(client, tenant):
    lines = [
        json.dumps("first a@b.de"),
        "not json at all",
        "",
        json.dumps({"text": 5}),
        json.dumps({"text": "x", "extra": 1}),
        json.dumps(["a list"]),
        json.dumps("last a@b.de"),
    ]
    results = ndjson(stream(client, tenant.headers, lines))

    assert len(results) == len(lines)
    assert results[0]["text"] == "first [EMAIL_ADDRESS]"
    assert results[-1]["text"] == "last [EMAIL_ADDRESS]"
    assert [r["error"]["line"] for r in results[1:-1]] == [2, 3, 4, 5, 6]
    assert all(r["error"]["message"] for r in results[1:-1])
    assert "not json at all" not in json.dumps(results)


def test_stream_without_a_trailing_newline_and_with_crlf(client, tenant):
    body = json.dumps("a a@b.de") + "\r\n" + json.dumps("b")
    response = client.post(STREAM, data=body, headers=tenant.headers, content_type=NDJSON)
    assert [r["text"] for r in ndjson(response)] == ["a [EMAIL_ADDRESS]", "b"]


def test_empty_stream_answers_nothing(client, tenant):
    response = client.post(STREAM, data=b"", headers=tenant.headers, content_type=NDJSON)
    assert ndjson(response) == []


def test_stream_needs_the_ndjson_content_type(client, tenant):
    response = client.post(STREAM, json={"text": LINE}, headers=tenant.headers)
    assert response.status_code == 400
    assert "application/x-ndjson" in response.json["message"]


@pytest.mark.parametrize("query", ["?mode=shout", "?findings=maybe", "?text=hello"])
def test_stream_query_is_validated(client, tenant, query):
    response = stream(client, tenant.headers, [json.dumps(LINE)], query)
    assert response.status_code == 422


def test_stream_without_a_length_ends_with_an_error_line_over_the_limit(
    app, client, tenant, monkeypatch
):
    monkeypatch.setitem(app.config, "SCRUB_MAX_BODY_BYTES", 100)
    body = ("\n".join(json.dumps(f"line {i}") for i in range(30)) + "\n").encode()

    response = client.post(
        STREAM,
        input_stream=io.BytesIO(body),
        headers={**tenant.headers, "Transfer-Encoding": "chunked"},
        content_type=NDJSON,
        # What gunicorn sets for a chunked body: the server ends the stream, not a length.
        environ_overrides={"wsgi.input_terminated": True},
    )

    results = ndjson(response)
    assert "error" in results[-1] and "not read" in results[-1]["error"]["message"]
    assert [r["text"] for r in results[:-1]] == [f"line {i}" for i in range(len(results) - 1)]


def test_a_lone_surrogate_does_not_break_the_stream(client, tenant):
    body = '"\\ud800 mail a@b.de"\n"next"\n'
    response = client.post(STREAM, data=body, headers=tenant.headers, content_type=NDJSON)
    assert [r["text"] for r in ndjson(response)] == ["\ud800 mail [EMAIL_ADDRESS]", "next"]


def test_a_failure_mid_stream_ends_it_with_an_error_line_and_logs_no_text(
    client, tenant, monkeypatch, caplog
):
    calls = []
    scrub_batch = services.scrub_batch

    def failing(lines, operator, scrubber=None, **options):
        calls.append(len(lines))
        if len(calls) == 2:
            raise ValueError(f"cannot handle {lines[0]}")
        return scrub_batch(lines, operator, **options)

    monkeypatch.setattr(services, "scrub_batch", failing)
    lines = [json.dumps(f"secret{i}@example.com") for i in range(600)]

    results = ndjson(stream(client, tenant.headers, lines))

    assert len(results) == 513
    assert results[-1] == {"error": {"line": 513, "message": "Internal error; stopped here."}}
    assert "ValueError" in caplog.text and "secret" not in caplog.text
