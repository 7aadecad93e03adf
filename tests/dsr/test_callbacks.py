"""OpenDSR status callbacks against a real HTTP receiver on loopback: signed bodies, one per
URL and status change, retries with backoff, failures recorded without the answer's body,
redirects never followed, and production's refusal of non-public destinations."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer

import pytest
import requests

from privacy import addresses
from privacy import http_client
from privacy import outbound
from privacy.dsr import callbacks
from privacy.dsr import services
from privacy.dsr import signing
from privacy.dsr.models import CallbackDelivery
from privacy.extensions import db
from privacy.inventory import services as inventory
from tests import helpers
from tests.queue import Job

# A controller's receipt time the OpenDSR API takes: recent (at most 92 days ago).
RECENT = (datetime.now(UTC) - timedelta(days=14)).strftime("%Y-%m-%dT%H:%M:%SZ")

EMAIL = "ana.lima@example.org"
SECRET_IN_ANSWER = "receiver-secret-7f3a"


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A controller's callback endpoint: records every POST; answers from `script` (one
    entry per POST, then `default`). An entry is a status code, or (code, headers)."""

    port: int = 0
    hits: list[Hit] = field(default_factory=list)
    connections: int = 0
    script: list = field(default_factory=list)
    default: int = 200
    delay: float = 0.0  # seconds to wait before answering the first POST

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def statuses(self, path: str = "/hook") -> list[str]:
        return [hit.json["request_status"] for hit in self.hits if hit.path == path]


@pytest.fixture
def receiver():
    state = Receiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            with lock:
                state.hits.append(Hit(self.path, dict(self.headers.items()), body))
                first = len(state.hits) == 1
                answer = state.script.pop(0) if state.script else state.default
            if first and state.delay:
                time.sleep(state.delay)
            code, headers = answer if isinstance(answer, tuple) else (answer, {})
            payload = f'{{"detail": "{SECRET_IN_ANSWER}"}}'.encode()
            try:
                self.send_response(code)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:  # the caller gave up waiting (the timeout test)
                pass

        do_GET = do_POST  # noqa: N815 - a followed redirect would show up as a hit too

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def verify_request(self, request, client_address):
            state.connections += 1
            return True

    server = Server(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def subject(tenant):
    created = inventory.create_subject(tenant.account, name="Ana Lima", email=EMAIL, actor="t")
    db.session.commit()
    return created


def request_body(kind: str = "access", urls: list[str] | None = None) -> dict:
    return {
        "regulation": "gdpr",
        "subject_request_id": str(uuid.uuid4()),
        "subject_request_type": kind,
        "submitted_time": RECENT,
        "subject_identities": [
            {"identity_type": "email", "identity_value": EMAIL, "identity_format": "raw"}
        ],
        "status_callback_urls": urls or [],
    }


def submit(client, tenant, body: dict):
    response = client.post("/opendsr/v1/requests", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response


def worked(queue) -> None:
    """The worker takes up the request, and sends every callback with its retries."""
    queue.run()


def callbacks_sent(queue) -> list:
    """Only the callbacks run (and their retries, however long their countdowns): requests
    stay pending."""
    return queue.run("dsr.deliver_callback")


def deliveries() -> list[CallbackDelivery]:
    db.session.expire_all()
    return list(db.session.scalars(db.select(CallbackDelivery).order_by(CallbackDelivery.id)))


def cancelled_once(client, tenant, url: str, queue) -> dict:
    """A pending request cancelled: exactly one status change, so exactly one delivery,
    queued (a test runs it)."""
    sent = request_body(urls=[url])
    submit(client, tenant, sent)
    cancel = client.delete(
        f"/opendsr/v1/requests/{sent['subject_request_id']}", headers=tenant.headers
    )
    assert cancel.status_code == 202
    queue.take("dsr.process")  # the worker never took it up
    return sent


# -- signatures and bodies ---------------------------------------------------------------


def test_callbacks_are_signed_with_the_processor_certificate(
    client, tenant, subject, receiver, queue
):
    submit(client, tenant, request_body(urls=[receiver.url()]))
    worked(queue)

    assert receiver.hits
    published = client.get("/opendsr/v1/certificate").data
    for hit in receiver.hits:
        signature = hit.headers["X-OpenDSR-Signature"]
        assert signing.verify(published, hit.body, signature)
        assert hit.headers["X-OpenGDPR-Signature"] == signature
        assert hit.headers["X-OpenDSR-Processor-Domain"] == signing.get().domain == "127.0.0.1"
        assert hit.headers["X-OpenGDPR-Processor-Domain"] == "127.0.0.1"
        assert hit.headers["Content-Type"] == "application/json"
        # Any change of the body breaks the signature.
        assert not signing.verify(published, hit.body + b" ", signature)


def test_every_status_change_calls_every_url_once(client, tenant, subject, receiver, queue):
    urls = [receiver.url("/first"), receiver.url("/second")]
    submit(client, tenant, request_body(urls=[*urls, urls[0]]))  # a URL listed twice
    worked(queue)

    # Received and verified are both "pending" to the controller: no change, no callback.
    assert receiver.statuses("/first") == ["in_progress", "completed"]
    assert receiver.statuses("/second") == ["in_progress", "completed"]
    assert len(receiver.hits) == 4
    rows = deliveries()
    assert [(r.status, r.state, r.attempts) for r in rows] == [
        ("in_progress", "delivered", 1),
        ("in_progress", "delivered", 1),
        ("completed", "delivered", 1),
        ("completed", "delivered", 1),
    ]
    assert all(r.delivered_at is not None and r.last_error is None for r in rows)


def test_a_cancellation_calls_back_cancelled(client, tenant, receiver, queue):
    cancelled_once(client, tenant, receiver.url(), queue)
    callbacks_sent(queue)

    assert receiver.statuses() == ["cancelled"]
    assert "results_url" not in receiver.hits[0].json


def test_the_body_names_the_request_and_its_results_when_completed(
    client, tenant, subject, receiver, queue
):
    sent = request_body(urls=[receiver.url()])
    created = submit(client, tenant, sent).json
    worked(queue)
    status = client.get(
        f"/opendsr/v1/requests/{sent['subject_request_id']}", headers=tenant.headers
    ).json

    in_progress, completed = (hit.json for hit in receiver.hits)
    expected = {
        "controller_id": str(tenant.account.public_id),
        "status_callback_url": receiver.url(),
        "subject_request_id": sent["subject_request_id"],
        "expected_completion_time": created["expected_completion_time"],
    }
    assert in_progress == {**expected, "request_status": "in_progress"}
    assert completed == {
        **expected,
        "request_status": "completed",
        "results_url": status["results_url"],
        "results_count": status["results_count"],
    }
    assert status["results_count"] == 2
    assert completed["results_url"].startswith("http://127.0.0.1:")
    assert EMAIL not in b"".join(hit.body for hit in receiver.hits).decode()


# -- retries and failures ----------------------------------------------------------------


def test_a_receiver_that_fails_twice_gets_the_callback_on_the_third_try(
    client, tenant, receiver, queue
):
    receiver.script = [500, 503]
    cancelled_once(client, tenant, receiver.url(), queue)
    callbacks_sent(queue)

    (row,) = deliveries()
    assert (row.state, row.attempts, row.last_error) == ("delivered", 3, None)
    assert row.delivered_at is not None
    assert len(receiver.hits) == 3
    assert len({hit.body for hit in receiver.hits}) == 1  # the same signed body each time
    certificate = signing.get().certificate_pem
    assert all(
        signing.verify(certificate, hit.body, hit.headers["X-OpenDSR-Signature"])
        for hit in receiver.hits
    )


def test_a_receiver_that_always_fails_ends_failed_after_the_last_retry(
    client, tenant, receiver, queue, caplog
):
    receiver.default = 500
    cancelled_once(client, tenant, receiver.url(), queue)
    runs = callbacks_sent(queue)

    (row,) = deliveries()
    assert row.state == "failed"
    assert row.attempts == outbound.MAX_ATTEMPTS
    assert row.last_error == "HTTP 500"
    assert row.delivered_at is None
    assert len(receiver.hits) == outbound.MAX_ATTEMPTS
    # Neither the stored error nor the logs carry what the receiver answered.
    assert SECRET_IN_ANSWER not in caplog.text
    assert "giving up" in caplog.text
    # One run per try, the last one ends the delivery instead of asking for another.
    assert [run.retried for run in runs] == [True] * (outbound.MAX_ATTEMPTS - 1) + [False]
    assert runs[-1].result == "failed"
    assert queue.jobs == []


def test_every_try_of_a_callback_carries_the_same_idempotency_key(client, tenant, receiver, queue):
    receiver.script = [500, 503]
    urls = [receiver.url("/first"), receiver.url("/second")]
    sent = request_body(urls=urls)
    submit(client, tenant, sent)
    client.delete(f"/opendsr/v1/requests/{sent['subject_request_id']}", headers=tenant.headers)
    queue.take("dsr.process")
    callbacks_sent(queue)

    keys = {}
    for hit in receiver.hits:
        keys.setdefault(hit.path, set()).add(hit.headers["Idempotency-Key"])
    assert len(receiver.hits) == 4  # two failed tries, then one for each URL
    (first,), (second,) = keys["/first"], keys["/second"]
    assert first != second  # one key per delivery
    assert str(uuid.UUID(first)) == first
    rows = deliveries()
    assert [callbacks.idempotency_key(row) for row in rows] == [first, second]
    assert all(str(row.id) not in first.split("-") for row in rows)


def test_a_try_whose_outcome_could_not_be_recorded_goes_again_with_the_same_key(
    app, client, tenant, receiver, queue, monkeypatch
):
    """Past every pause the outcome is still not written: the task runs again and the
    receiver gets the same signed body under the same Idempotency-Key, a repeat it drops."""
    from sqlalchemy.exc import OperationalError

    cancelled_once(client, tenant, receiver.url(), queue)
    monkeypatch.setattr(outbound, "RECORD_PAUSES", (0, 0))
    refusals = iter([True, True])
    real_begin_write = outbound.begin_write

    def busy_after_the_post():
        if receiver.hits and next(refusals, False):
            raise OperationalError("BEGIN IMMEDIATE", {}, Exception("database is locked"))
        real_begin_write()

    monkeypatch.setattr(outbound, "begin_write", busy_after_the_post)
    runs = callbacks_sent(queue)

    assert [run.retried for run in runs] == [True, False]
    first, second = receiver.hits
    assert first.body == second.body
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    assert first.headers["X-OpenDSR-Signature"] == second.headers["X-OpenDSR-Signature"]
    (row,) = deliveries()
    assert (row.state, row.attempts) == ("delivered", 2)


def test_backoff_doubles_from_the_configured_base(
    app, client, tenant, receiver, queue, monkeypatch
):
    monkeypatch.setitem(app.config, "CALLBACK_RETRY_BASE_SECONDS", 3)
    receiver.script = [500, 500, 500]
    cancelled_once(client, tenant, receiver.url(), queue)

    countdowns = []
    while queue.jobs:
        (job,) = queue.jobs
        countdowns.append(job.countdown)
        queue.run_one(job)

    assert countdowns == [None, 3, 6, 12]
    assert deliveries()[0].state == "delivered"


def test_a_busy_database_neither_uses_up_a_try_nor_sends_twice(
    app, client, tenant, receiver, queue, monkeypatch
):
    """The outcome of a sent try is written again until the database takes it: the POST is
    never repeated for a lock, and the try counts once."""
    from sqlalchemy.exc import OperationalError

    cancelled_once(client, tenant, receiver.url(), queue)
    monkeypatch.setattr(outbound, "RECORD_PAUSES", (0, 0, 0))
    refusals = iter([True, True])  # the first two attempts to record meet a busy database
    real_begin_write = outbound.begin_write

    def busy_after_the_post():
        if receiver.hits and next(refusals, False):
            raise OperationalError("BEGIN IMMEDIATE", {}, Exception("database is locked"))
        real_begin_write()

    monkeypatch.setattr(outbound, "begin_write", busy_after_the_post)
    (run,) = callbacks_sent(queue)

    assert run.result == "delivered"
    assert len(receiver.hits) == 1
    (row,) = deliveries()
    assert (row.state, row.attempts) == ("delivered", 1)


def test_a_busy_database_before_the_post_sends_nothing_and_counts_nothing(
    app, client, tenant, receiver, queue, monkeypatch
):
    """SQLite's write lock when the try is claimed: the task runs again, with its retry
    count unchanged, and nothing went out."""
    from sqlalchemy.exc import OperationalError

    cancelled_once(client, tenant, receiver.url(), queue)
    real_begin_write = outbound.begin_write
    refusals = iter([True])

    def busy_at_the_claim():
        if next(refusals, False):
            raise OperationalError("BEGIN IMMEDIATE", {}, Exception("database is locked"))
        real_begin_write()

    monkeypatch.setattr(outbound, "begin_write", busy_at_the_claim)
    (first,) = queue.run_now()
    assert first.retried and receiver.hits == []
    (again,) = queue.jobs
    assert again.retries == 0 and 0 < again.countdown <= 1
    assert deliveries()[0].attempts == 0

    queue.run_one(again)
    assert len(receiver.hits) == 1
    (row,) = deliveries()
    assert (row.state, row.attempts) == ("delivered", 1)


def test_a_redirect_is_not_followed_and_counts_as_a_failure(client, tenant, receiver, queue):
    receiver.default = (307, {"Location": receiver.url("/elsewhere")})
    cancelled_once(client, tenant, receiver.url(), queue)
    callbacks_sent(queue)

    (row,) = deliveries()
    assert (row.state, row.last_error) == ("failed", "HTTP 307")
    assert {hit.path for hit in receiver.hits} == {"/hook"}
    assert len(receiver.hits) == outbound.MAX_ATTEMPTS


def test_a_receiver_that_does_not_answer_in_time_is_retried(
    client, tenant, receiver, queue, monkeypatch
):
    monkeypatch.setattr(http_client, "TIMEOUT_SECONDS", (2, 0.3))
    receiver.delay = 1.0
    cancelled_once(client, tenant, receiver.url(), queue)
    callbacks_sent(queue)

    (row,) = deliveries()
    assert (row.state, row.attempts) == ("delivered", 2)
    assert len(receiver.hits) == 2


def test_an_unreachable_receiver_records_the_error_class(client, tenant, queue):
    cancelled_once(client, tenant, f"http://127.0.0.1:{helpers.free_port()}/hook", queue)
    callbacks_sent(queue)

    (row,) = deliveries()
    assert (row.state, row.last_error) == ("failed", "ConnectionError")
    assert row.attempts == outbound.MAX_ATTEMPTS


def test_a_delivered_callback_is_not_sent_again(client, tenant, receiver, queue):
    cancelled_once(client, tenant, receiver.url(), queue)
    (job,) = queue.jobs
    queue.run_one(job)
    (row,) = deliveries()
    assert row.state == "delivered"

    # A redelivered message (acks_late after a lost ack) finds the row done.
    assert queue.run_one(job).result == "delivered"
    assert queue.run_one(Job("dsr.deliver_callback", (10**9,), {})).result == "gone"
    assert len(receiver.hits) == 1
    assert deliveries()[0].attempts == 1


# -- production: https and public addresses only -----------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",  # noqa: S104 - the address under test, not a bind
        "255.255.255.255",
        "224.0.1.1",
        "::1",
        "::",
        "fe80::1%eth0",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "ff0e::1",
        "not-an-address",
        # IPv4 carried in IPv6, every form: public only if every carried address is.
        "::127.0.0.1",  # IPv4-compatible (deprecated): never public
        "::10.0.0.1",
        "::8.8.8.8",
        "::ffff:169.254.169.254",  # IPv4-mapped
        "::ffff:0:7f00:1",  # IPv4-translated (SIIT) of 127.0.0.1
        "::ffff:0:a9fe:a9fe",  # IPv4-translated of 169.254.169.254
        "64:ff9b:1::7f00:1",  # local-use NAT64: never public
        "64:ff9b:1:7f00:1::",
        "64:ff9b:1::808:808",
        "64:ff9b::a9fe:a9fe",  # NAT64 of the metadata address
        "2002:a9fe:a9fe::1",  # 6to4 of the metadata address
        "2002:a00:1:1::1",  # 6to4 of 10.0.0.1
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
        "2001:0:808:808:0:f5f5:80ff:fffe",  # Teredo: server 8.8.8.8, client 127.0.0.1
        "2606:4700:4700::5efe:7f00:1",  # ISATAP of 127.0.0.1 under a global prefix
        "2606:4700:4700::200:5efe:a00:1",  # ISATAP of 10.0.0.1
    ],
)
def test_non_public_addresses_are_refused(address):
    assert not addresses.is_public_address(address)


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "93.184.215.14",
        "2606:4700:4700::1111",
        "::ffff:8.8.8.8",  # IPv4-mapped: 8.8.8.8 on the wire
        "64:ff9b::808:808",  # NAT64 of 8.8.8.8
        "2002:808:808::1",  # 6to4 of 8.8.8.8
        "2606:4700:4700::5efe:808:808",  # ISATAP of 8.8.8.8
    ],
)
def test_public_addresses_are_allowed(address):
    assert addresses.is_public_address(address)


@pytest.mark.parametrize(
    ("address", "carried"),
    [
        ("::ffff:10.0.0.1", ["10.0.0.1"]),
        ("::ffff:0:a00:1", ["10.0.0.1"]),
        ("64:ff9b::a00:1", ["10.0.0.1"]),
        ("2002:a00:1::", ["10.0.0.1"]),
        ("2001:0:808:808:0:f5f5:80ff:fffe", ["8.8.8.8", "127.0.0.1"]),
        ("2606:4700:4700::5efe:a00:1", ["10.0.0.1"]),
        ("2606:4700:4700::1111", []),
    ],
)
def test_the_ipv4_addresses_an_ipv6_address_carries(address, carried):
    import ipaddress

    found = addresses.embedded_ipv4(ipaddress.IPv6Address(address))
    assert [str(ip) for ip in found] == carried


def test_production_refuses_non_public_urls_when_a_request_arrives(
    app, client, tenant, monkeypatch
):
    monkeypatch.setitem(app.config, "PRODUCTION", True)
    for url in (
        "http://controller.example/hook",
        "https://127.0.0.1/hook",
        "https://[::1]/hook",
        "https://localhost/hook",
        "https://metadata.localhost/hook",
        "https://169.254.169.254/latest/meta-data",
    ):
        sent = request_body(urls=[url])
        response = client.post("/opendsr/v1/requests", json=sent, headers=tenant.headers)
        assert response.status_code == 400, url
        reasons = [e["reason"] for e in response.json["error"]["errors"]]
        assert reasons == ["invalid_status_callback_url"], url
    accepted = client.post(
        "/opendsr/v1/requests",
        json=request_body(urls=["https://controller.example/hook"]),
        headers=tenant.headers,
    )
    assert accepted.status_code == 201


@pytest.mark.parametrize(
    "url,error",
    [
        ("http://127.0.0.1:{port}/hook", "refused: https required"),
        ("https://127.0.0.1:{port}/hook", "refused: address not public"),
        # A name is resolved at delivery: localhost.<tld> style names and rebinding included.
        ("https://localhost:{port}/hook", "refused: address not public"),
        ("https://[::ffff:127.0.0.1]:{port}/hook", "refused: address not public"),
        ("https://[::127.0.0.1]:{port}/hook", "refused: address not public"),
        ("https://[64:ff9b:1::7f00:1]:{port}/hook", "refused: address not public"),
    ],
)
def test_production_refuses_non_public_destinations_at_delivery(
    app, tenant, receiver, queue, monkeypatch, url, error
):
    # Stored before production was switched on (or resolving elsewhere back then).
    request = services.submit(
        tenant.account,
        kind="access",
        source="opendsr",
        email=EMAIL,
        callback_urls=[url.format(port=receiver.port)],
        actor="t",
    )
    db.session.commit()
    monkeypatch.setitem(app.config, "PRODUCTION", True)
    services.cancel(tenant.account, request, actor="t")
    db.session.commit()
    callbacks_sent(queue)

    (row,) = deliveries()
    assert (row.state, row.attempts, row.last_error) == ("failed", 1, error)
    assert receiver.connections == 0 and receiver.hits == []


def test_production_resolves_names_and_connects_to_the_checked_address(app, monkeypatch):
    """A public name is connected to at the address that was checked (no second lookup a
    rebinding DNS server could answer differently)."""
    lookups = []

    def fake_getaddrinfo(host, port, *args, **kwargs):
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.10", port))]

    connected = []

    def fake_create_connection(address, *args, **kwargs):
        connected.append(address)
        raise OSError("stop here")

    monkeypatch.setattr(http_client.socket, "getaddrinfo", fake_getaddrinfo)
    monkeypatch.setattr(http_client, "create_connection", fake_create_connection)
    monkeypatch.setitem(app.config, "PRODUCTION", True)
    # 192.0.2.0/24 is documentation space: not public, so it is refused before connecting.
    with pytest.raises(addresses.RefusedDestination):
        http_client.post("https://controller.example/hook", b"{}", {})
    assert lookups == ["controller.example"] and connected == []

    monkeypatch.setattr(
        http_client.socket,
        "getaddrinfo",
        lambda host, port, *a, **kw: [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("8.8.8.8", port))
        ],
    )
    with pytest.raises(requests.ConnectionError):
        http_client.post("https://controller.example/hook", b"{}", {})
    assert connected == [("8.8.8.8", 443)]


# -- the signer callbacks and answers use ------------------------------------------------


def test_a_key_that_is_not_the_certificates_is_refused(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        signing._generate(folder, "privacy.test")

    with pytest.raises(signing.SigningKeyError, match="does not belong"):
        signing._load(
            {
                "OPENDSR_KEY_FILE": str(first / "processor.key"),
                "OPENDSR_CERT_FILE": str(second / "processor.crt"),
            }
        )
    (tmp_path / "bad.key").write_text("not a key")
    with pytest.raises(signing.SigningKeyError, match="cannot be read") as refused:
        signing._load(
            {
                "OPENDSR_KEY_FILE": str(tmp_path / "bad.key"),
                "OPENDSR_CERT_FILE": str(first / "processor.crt"),
            }
        )
    assert "not a key" not in str(refused.value)


def test_processes_starting_together_generate_one_embedded_pair(tmp_path):
    config = {"INSTANCE_PATH": str(tmp_path), "BASE_URL": "http://privacy.test:8000"}
    signers = []
    threads = [
        threading.Thread(target=lambda: signers.append(signing._load(config))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(signers) == 4
    assert len({signer.certificate_pem for signer in signers}) == 1
    body = b'{"request_status": "completed"}'
    assert all(
        signing.verify(signers[0].certificate_pem, body, signer.sign(body)) for signer in signers
    )
    assert signers[0].domain == "privacy.test"
    assert (tmp_path / "opendsr" / "processor.key").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in (tmp_path / "opendsr").iterdir()) == [
        ".lock",
        "processor.crt",
        "processor.key",
    ]


@pytest.mark.parametrize("signature", [None, "", "not base64!", "AAAA"])
def test_a_missing_or_malformed_signature_does_not_verify(app, signature):
    assert not signing.verify(signing.get().certificate_pem, b"{}", signature)
