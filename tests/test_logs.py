"""Our own logs, the WSGI server's included, never carry names, e-mails or request bodies."""

from __future__ import annotations

import http.client
import json
import logging

import pytest

from tests import helpers

NAME, EMAIL = "Leopoldine Quackenbush", "leopoldine.quackenbush@example.org"
MEMBER_NAME, MEMBER_EMAIL = "Wilhelmina Fairweather", "wilhelmina@acme.example"
FORBIDDEN = [
    NAME,
    EMAIL,
    "Leopoldine",
    "Quackenbush",
    MEMBER_NAME,
    MEMBER_EMAIL,
    "Fairweather",
    "admin@acme.example",
    "127.0.0.1",
]


def drive_flows(request) -> None:
    """Exercise the API with known personal data. `request(method, path, body, ctype)`."""
    subject = request("POST", "/api/v1/subjects", {"name": NAME, "email": EMAIL}, None)
    subject_id = json.loads(subject)["id"]
    request("POST", "/api/v1/subjects", {"name": NAME, "email": EMAIL}, None)  # 409
    request("POST", "/api/v1/subjects", {"name": NAME, "email": "bad" + NAME}, None)  # 422
    request("POST", "/api/v1/subjects/lookup", {"email": EMAIL}, None)
    request("PATCH", f"/api/v1/subjects/{subject_id}", {"name": NAME + " Jr"}, None)
    request("GET", f"/api/v1/subjects?external_ref={EMAIL}", None, None)
    request("GET", f"/api/v1/subjects/{EMAIL}", None, None)  # 404 with an e-mail in the path
    request(
        "POST",
        "/api/v1/subjects/import",
        f"name,email\n{NAME} II,2{EMAIL}\n{NAME},{EMAIL}\n",
        "text/csv",
    )  # 409
    request("POST", "/api/v1/subjects/import", f"name,email\n{NAME} III,3{EMAIL}\n", "text/csv")
    request("GET", "/api/v1/subjects/export?format=csv", None, None)
    request("POST", "/api/v1/members", {"email": MEMBER_EMAIL, "name": MEMBER_NAME}, None)
    request("POST", "/api/v1/subjects", '{"name": "' + NAME + '", ', "application/json")  # 400
    request("DELETE", f"/api/v1/subjects/{subject_id}", None, None)


def test_app_logs_hold_no_personal_data(app, client, tenant, caplog):
    caplog.set_level(logging.DEBUG)

    def request(method, path, body, ctype):
        kwargs = {"headers": tenant.headers}
        if isinstance(body, dict):
            kwargs["json"] = body
        elif body is not None:
            kwargs.update(data=body, content_type=ctype)
        return client.open(path, method=method, **kwargs).get_data(as_text=True)

    drive_flows(request)
    text = "\n".join(f"{r.getMessage()} {r.args!r}" for r in caplog.records)
    assert "/api/v1/subjects" in text  # the access log did run
    for needle in FORBIDDEN[:-1]:
        assert needle.lower() not in text.lower(), needle


def test_the_service_log_keeps_task_and_request_ids_whole(app, monkeypatch):
    """Our logs follow a task through its retries by its id: the safety net must not cut
    it (a UUID starting with eight digits after "callback" once read as a phone number)."""
    import io
    import sys

    from privacy import logs

    captured = io.StringIO()
    with monkeypatch.context() as patch:
        patch.setattr(sys, "stderr", captured)
        logs.configure_logging("text", "INFO")
        task_id = "12345678-88a8-4c2d-9f3e-0123456789ab"
        logging.getLogger("celery.app.trace").info(
            "Task dsr.deliver_callback[%s] retry: Retry in 2s", task_id
        )
        logging.getLogger("privacy.test").info("mail to %s", EMAIL)
        logs.configure_logging("text", "INFO")  # drains the handler's queue
    logs.configure_logging(app.config["LOG_FORMAT"], app.config["LOG_LEVEL"])  # the real stderr

    err = captured.getvalue()
    assert f"Task dsr.deliver_callback[{task_id}] retry" in err
    assert EMAIL not in err and "mail to [EMAIL_ADDRESS]" in err


@pytest.mark.integration
def test_gunicorn_output_holds_no_personal_data(tmp_path):
    env = helpers.service_env(
        tmp_path / "instance", PRIVACY_LOG_FORMAT="json", PRIVACY_LOG_LEVEL="DEBUG"
    )
    helpers.flask_cli(env, "db", "upgrade")
    token = helpers.create_account(env, "Acme", "admin@acme.example")["api_token"]
    port = helpers.free_port()
    env["PRIVACY_BIND"] = f"127.0.0.1:{port}"
    log = tmp_path / "gunicorn.log"
    args = [str(helpers.BIN / "gunicorn"), "--config", "gunicorn.conf.py", "wsgi:app"]
    with helpers.running(args, env, log):
        helpers.wait_http(f"http://127.0.0.1:{port}/healthz")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

        def request(method, path, body, ctype):
            headers = {"Authorization": f"Bearer {token}"}
            if isinstance(body, dict):
                body, ctype = json.dumps(body), "application/json"
            if ctype:
                headers["Content-Type"] = ctype
            connection.request(method, path, body=body, headers=headers)
            return connection.getresponse().read().decode()

        drive_flows(request)
        connection.close()
    output = log.read_text()
    lines = [json.loads(line) for line in output.splitlines()]  # every line is JSON
    # The server's own listening address is not a client's; anything else with it would be.
    output = "\n".join(line for line in output.splitlines() if "Listening at" not in line)
    access = [line for line in lines if line.get("logger") == "privacy.access"]
    assert len(access) >= 12, output[-2000:]
    assert all(line.get("request_id") not in (None, "-") for line in access), access
    for needle in FORBIDDEN:
        assert needle.lower() not in output.lower(), needle
