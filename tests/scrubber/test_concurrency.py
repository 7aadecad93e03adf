"""Scrub requests in progress: per account (429) and per process (503), both with Retry-After,
so one account's scrubbing never holds every thread of a web process."""

from __future__ import annotations

import json
import threading

import pytest

from privacy.scrubber import limits
from privacy.scrubber import services

LINE = "login ok for m.rossi@posteo.it from 203.0.113.77"


@pytest.fixture
def slots(app, monkeypatch):
    """A fresh slot table, and limits of 1 per account and 2 per process."""
    fresh = limits.Slots()
    monkeypatch.setattr(limits, "slots", fresh)
    monkeypatch.setitem(app.config, "SCRUB_ACCOUNT_CONCURRENCY", 1)
    monkeypatch.setitem(app.config, "SCRUB_PROCESS_CONCURRENCY", 2)
    monkeypatch.setitem(app.config, "SCRUB_BUDGET_SECONDS", 2.0)
    return fresh


@pytest.fixture
def gate(monkeypatch):
    """scrub_batch waits on `gate.open` (and says it got there on `gate.inside`)."""

    class Gate:
        open = threading.Event()
        inside = threading.Event()

    real = services.scrub_batch

    def held(*args, **kwargs):
        Gate.inside.set()
        assert Gate.open.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(services, "scrub_batch", held)
    yield Gate
    Gate.open.set()


def post_in_thread(app, headers, path="/api/v1/scrub", **kwargs):
    out = {}

    def run():
        with app.test_client() as other:
            if "data" not in kwargs:
                kwargs.setdefault("json", {"text": LINE})
            out["response"] = other.post(path, headers=headers, **kwargs)
            out["body"] = out["response"].get_data(as_text=True)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def test_a_second_scrub_of_the_same_account_is_429_with_retry_after(
    app, client, tenant, other_tenant, slots, gate
):
    thread, first = post_in_thread(app, tenant.headers)
    assert gate.inside.wait(30)
    try:
        second = client.post("/api/v1/scrub", json={"text": LINE}, headers=tenant.headers)
        assert second.status_code == 429
        assert second.headers["Retry-After"] == "2"
        assert second.json["code"] == 429 and second.json["status"] == "Too Many Requests"
        assert "in progress" in second.json["message"] and "posteo" not in second.get_data(True)
        # Another account is not held up by the first one's request.
        gate.open.set()
        other = client.post("/api/v1/scrub", json={"text": LINE}, headers=other_tenant.headers)
        assert other.status_code == 200
    finally:
        gate.open.set()
        thread.join(30)
    assert first["response"].status_code == 200
    assert slots.running() == 0
    again = client.post("/api/v1/scrub", json={"text": LINE}, headers=tenant.headers)
    assert again.status_code == 200


def test_the_process_cap_is_503_with_retry_after_and_leaves_threads_free(
    client, tenant, other_tenant, slots
):
    held = [slots.hold(key, per_key=1, total=2) for key in ("x", "y")]
    for headers in (tenant.headers, other_tenant.headers):
        response = client.post("/api/v1/scrub", json={"text": LINE}, headers=headers)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "2"
        assert response.json["code"] == 503
    # Everything that is not scrubbing still answers.
    assert client.get("/api/v1/account", headers=tenant.headers).status_code == 200
    assert client.get("/api/v1/scrub/settings", headers=tenant.headers).status_code == 200
    for one in held:
        one.release()
    assert (
        client.post("/api/v1/scrub", json={"text": LINE}, headers=tenant.headers).status_code == 200
    )


@pytest.mark.parametrize(
    "path,kwargs",
    [
        ("/api/v1/scrub", {"json": {"text": LINE, "mode": "nope"}}),  # 422
        ("/api/v1/scrub", {"json": {"lines": ["x"] * 10_001}}),  # 413
        ("/api/v1/scrub/stream", {"data": "x", "content_type": "text/plain"}),  # 400
        ("/api/v1/scrub/relay", {"data": "x", "content_type": "text/plain"}),  # 409, no relay
    ],
)
def test_refused_requests_give_their_slot_back(client, tenant, slots, path, kwargs):
    response = client.post(path, headers=tenant.headers, **kwargs)
    assert 400 <= response.status_code < 500
    assert slots.running() == 0


def test_a_stream_holds_its_slot_until_its_last_line(app, client, tenant, slots, gate):
    body = "\n".join(json.dumps(LINE) for _ in range(3)) + "\n"
    thread, first = post_in_thread(
        app, tenant.headers, "/api/v1/scrub/stream", data=body, content_type="application/x-ndjson"
    )
    assert gate.inside.wait(30)
    try:
        assert slots.running(tenant.account.id) == 1
        busy = client.post("/api/v1/scrub", json={"text": LINE}, headers=tenant.headers)
        assert busy.status_code == 429
    finally:
        gate.open.set()
        thread.join(30)
    assert first["response"].status_code == 200
    assert len(first["body"].splitlines()) == 3
    assert slots.running() == 0


def test_slots_count_per_key_and_in_all():
    table = limits.Slots()
    a1 = table.hold("a", per_key=2, total=3)
    a2 = table.hold("a", per_key=2, total=3)
    assert table.hold("a", per_key=2, total=3) == limits.ACCOUNT
    b1 = table.hold("b", per_key=2, total=3)
    assert table.hold("c", per_key=2, total=3) == limits.PROCESS
    a1.release()
    a1.release()  # once only
    assert table.running("a") == 1 and table.running() == 2
    for held in (a2, b1):
        held.release()
    assert table.running() == 0


def test_the_process_cap_must_stay_below_the_thread_count(monkeypatch, tmp_path):
    from privacy.config import ConfigError
    from privacy.config import load

    monkeypatch.setenv("PRIVACY_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("PRIVACY_WEB_THREADS", "4")
    assert load(tmp_path)["SCRUB_PROCESS_CONCURRENCY"] == 2
    monkeypatch.setenv("PRIVACY_SCRUB_PROCESS_CONCURRENCY", "4")
    with pytest.raises(ConfigError, match="below PRIVACY_WEB_THREADS"):
        load(tmp_path)
    monkeypatch.setenv("PRIVACY_SCRUB_PROCESS_CONCURRENCY", "3")
    monkeypatch.setenv("PRIVACY_SCRUB_BUDGET_SECONDS", "0.5")
    config = load(tmp_path)
    assert config["SCRUB_PROCESS_CONCURRENCY"] == 3 and config["SCRUB_BUDGET_SECONDS"] == 0.5
    monkeypatch.setenv("PRIVACY_SCRUB_BUDGET_SECONDS", "soon")
    with pytest.raises(ConfigError, match="PRIVACY_SCRUB_BUDGET_SECONDS"):
        load(tmp_path)
