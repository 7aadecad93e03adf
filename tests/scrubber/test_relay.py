"""POST /api/v1/scrub/relay: scrub plain-text lines and deliver them to the configured receiver."""

from __future__ import annotations

import socket
import threading

import pytest

from privacy.config import ConfigError
from privacy.config import load
from privacy.scrubber.relay import Target

RELAY = "/api/v1/scrub/relay"
LINES = [
    "2026-11-29T10:00:00 web app: login ok for m.rossi@posteo.it from 203.0.113.77",
    "2026-11-29T10:00:01 web app: checkout user=tomasz.wolski card=4111111111111111",
]


class Receiver:
    """A real TCP or UDP listener on loopback that keeps what arrives, line by line."""

    def __init__(self, scheme: str) -> None:
        kind = socket.SOCK_STREAM if scheme == "tcp" else socket.SOCK_DGRAM
        self.socket = socket.socket(socket.AF_INET, kind)
        self.socket.bind(("127.0.0.1", 0))
        self.scheme, self.port = scheme, self.socket.getsockname()[1]
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.received: list[str] = []
        self.got = threading.Event()
        if scheme == "tcp":
            self.socket.listen()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                if self.scheme == "tcp":
                    conn, _ = self.socket.accept()
                    with conn:
                        data = b"".join(iter(lambda c=conn: c.recv(65536), b""))
                    self.received += data.decode().splitlines()
                else:
                    self.received.append(self.socket.recv(65536).decode())
            except OSError:
                return
            self.got.set()

    def wait(self, count: int) -> list[str]:
        for _ in range(50):
            if len(self.received) >= count:
                break
            self.got.wait(0.1)
            self.got.clear()
        return self.received

    def close(self) -> None:
        self.socket.close()


@pytest.fixture(params=["tcp", "udp"])
def receiver(request, app, monkeypatch):
    receiver = Receiver(request.param)
    monkeypatch.setitem(app.config, "SCRUB_RELAY_URL", receiver.url)
    yield receiver
    receiver.close()


def relay(client, headers, body: str | bytes, query: str = ""):
    return client.post(RELAY + query, data=body, headers=headers, content_type="text/plain")


def test_lines_are_scrubbed_and_delivered_in_order(client, tenant, receiver):
    response = relay(client, tenant.headers, "\n".join(LINES) + "\n")

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json == {"lines": 2}
    assert receiver.wait(2) == [
        "2026-11-29T10:00:00 web app: login ok for [EMAIL_ADDRESS] from [IP_ADDRESS]",
        "2026-11-29T10:00:01 web app: checkout user=[PERSON] card=[CREDIT_CARD]",
    ]


def test_the_mode_is_taken_from_the_query_string(client, tenant, receiver):
    first = relay(client, tenant.headers, LINES[0], "?mode=pseudonym")
    second = relay(client, tenant.headers, LINES[0] + "\r\n", "?mode=pseudonym")

    assert first.json == second.json == {"lines": 1}
    one, two = receiver.wait(2)
    assert one == two and "m.rossi" not in one and "<EMAIL_ADDRESS:" in one


def test_invalid_utf8_is_replaced_not_refused(client, tenant, receiver):
    response = relay(client, tenant.headers, b"bad \xff byte for kim@proton.me")

    assert response.json == {"lines": 1}
    assert receiver.wait(1) == ["bad \ufffd byte for [EMAIL_ADDRESS]"]


def test_an_empty_body_relays_nothing(client, tenant, receiver):
    assert relay(client, tenant.headers, "").json == {"lines": 0}


def test_an_unreachable_receiver_is_503_so_the_shipper_retries(app, client, tenant, monkeypatch):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setitem(app.config, "SCRUB_RELAY_URL", f"tcp://127.0.0.1:{port}")

    response = relay(client, tenant.headers, LINES[0])

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "m.rossi" not in response.get_data(as_text=True)


def test_without_a_receiver_it_is_409(client, tenant):
    response = relay(client, tenant.headers, LINES[0])

    assert response.status_code == 409
    assert "PRIVACY_SCRUB_RELAY_URL" in response.json["message"]


def test_it_needs_the_scrub_scope(client, tenant, receiver):
    assert relay(client, {}, LINES[0]).status_code == 401
    inventory_only = tenant.token_for("member", scopes=["inventory"])
    assert relay(client, inventory_only, LINES[0]).status_code == 403
    assert receiver.received == []


def test_limits_and_options(app, client, tenant, receiver, monkeypatch):
    assert relay(client, tenant.headers, "x\n" * 10_001).status_code == 413
    assert relay(client, tenant.headers, "x", "?mode=shout").status_code == 422
    assert relay(client, tenant.headers, "x", "?findings=true").status_code == 422
    monkeypatch.setitem(app.config, "SCRUB_MAX_BODY_BYTES", 100)
    assert relay(client, tenant.headers, "x" * 101).status_code == 413
    assert receiver.received == []


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:5514", "tcp://127.0.0.1", "tcp://:5514", "udp://host:port", "tcp://h:1/x"],
)
def test_a_bad_receiver_url_stops_the_service_at_start(url, monkeypatch, tmp_path):
    monkeypatch.setenv("PRIVACY_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("PRIVACY_SCRUB_RELAY_URL", url)
    with pytest.raises(ConfigError, match="PRIVACY_SCRUB_RELAY_URL"):
        load(tmp_path)


def test_a_good_receiver_url_is_kept(monkeypatch, tmp_path):
    monkeypatch.setenv("PRIVACY_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("PRIVACY_SCRUB_RELAY_URL", "udp://logs.internal:514")
    assert load(tmp_path)["SCRUB_RELAY_URL"] == "udp://logs.internal:514"
    assert str(Target.parse("udp://logs.internal:514")) == "udp://logs.internal:514"
