"""The whole OpenDSR flow over HTTP with the real parts: gunicorn serving the app, a Celery
worker process (Redis when PRIVACY_TEST_BROKER_URL names it, else the embedded filesystem
broker), object storage in moto's S3 server over HTTP, a processor certificate issued by a
throwaway test CA, and a controller's callback receiver on loopback.

The test plays the controller: it checks every answer and every callback the way a
controller does (signature, certificate chain, domain), downloads the access package and
confirms the erasure (gone from the API, an entry in the ledger bucket)."""

from __future__ import annotations

import base64
import json
import os
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
from pathlib import Path

import boto3
import pytest
import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests import helpers
from tests.conftest import database_url

pytestmark = pytest.mark.integration

DOMAIN = "privacy.test"
BUCKET = "privacy-flow"
REGION = "eu-central-1"
EMAIL = "ana.lima@example.org"
NAME = "Ana Lima"
AWS_ENV = {
    # Dummy credentials only: nothing here may ever reach real AWS.
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
DEADLINE_SECONDS = 40


# -- the parts ---------------------------------------------------------------------------


@dataclass
class Authority:
    certificate: x509.Certificate
    processor_key_file: Path
    processor_cert_file: Path


def make_ca(folder: Path) -> Authority:
    """A throwaway CA and a processor certificate for DOMAIN that it signed."""
    now = datetime.now(UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Privacy Test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DOMAIN)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(DOMAIN)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True)
    key_file, cert_file = folder / "processor.key", folder / "processor.crt"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return Authority(ca, key_file, cert_file)


def start_moto():
    """moto's S3 server on loopback (the test extras install it)."""
    try:
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
    except Exception as exc:  # any start-up failure means "no S3 here"
        reason = f"moto's S3 server cannot start ({type(exc).__name__}: {exc})"
        pytest.fail(reason + "; `make test` installs moto[server] with the test extras")
    return server, f"http://{host}:{port}"


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    port: int = 0
    hits: list[Hit] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def statuses(self, path: str) -> list[str]:
        return [json.loads(h.body)["request_status"] for h in self.hits if h.path == path]


@pytest.fixture
def receiver():
    state = Receiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                state.hits.append(Hit(self.path, dict(self.headers.items()), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield state
    server.shutdown()
    server.server_close()


# -- what a controller checks ------------------------------------------------------------


def chains_to(certificate: x509.Certificate, ca: x509.Certificate) -> bool:
    """The certificate was issued and signed by `ca` (its key verifies the signature)."""
    if certificate.issuer != ca.subject:
        return False
    try:
        ca.public_key().verify(
            certificate.signature,
            certificate.tbs_certificate_bytes,
            padding.PKCS1v15(),
            certificate.signature_hash_algorithm,
        )
    except InvalidSignature:
        return False
    return True


def names(certificate: x509.Certificate) -> list[str]:
    return certificate.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value.get_values_for_type(x509.DNSName)


def signed_by(certificate: x509.Certificate, body: bytes, headers) -> bool:
    """docs/opendsr.md's check: the processor's signature over the raw body."""
    if headers.get("X-OpenDSR-Processor-Domain") not in names(certificate):
        return False
    try:
        certificate.public_key().verify(
            base64.b64decode(headers["X-OpenDSR-Signature"]),
            body,
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except (InvalidSignature, KeyError, ValueError):
        return False
    return True


# -- the flow ----------------------------------------------------------------------------


@dataclass
class Controller:
    base: str
    token: str
    certificate: x509.Certificate
    http: requests.Session
    logs: list[Path]

    def log_tail(self) -> str:
        return "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}"
            for log in self.logs
            if log.exists()
        )

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return self.http.request(method, self.base + path, headers=headers, timeout=10, **kwargs)

    def signed(self, method: str, path: str, **kwargs) -> requests.Response:
        response = self.call(method, path, **kwargs)
        assert signed_by(self.certificate, response.content, response.headers), (
            f"{method} {path}: answer not signed by the processor certificate"
        )
        return response

    def submit(self, kind: str, callback: str) -> str:
        body = {
            "regulation": "gdpr",
            "subject_request_id": str(uuid.uuid4()),
            "subject_request_type": kind,
            "submitted_time": datetime.now(UTC).isoformat(timespec="seconds"),
            "subject_identities": [
                {"identity_type": "email", "identity_value": EMAIL, "identity_format": "raw"}
            ],
            "status_callback_urls": [callback],
        }
        raw = json.dumps(body).encode()
        response = self.signed(
            "POST",
            "/opendsr/v1/requests",
            data=raw,
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 201, response.text
        answer = response.json()
        assert base64.b64decode(answer["encoded_request"]) == raw
        assert signed_by(
            self.certificate,
            raw,
            {
                "X-OpenDSR-Signature": answer["processor_signature"],
                "X-OpenDSR-Processor-Domain": DOMAIN,
            },
        )
        return body["subject_request_id"]

    def wait_callbacks(self, receiver: Receiver, path: str) -> None:
        """A controller acts on the completed callback; by then the worker is idle (the
        embedded SQLite database refuses a second writer in the same instant)."""
        deadline = time.monotonic() + 15
        while receiver.statuses(path) != ["in_progress", "completed"]:
            assert time.monotonic() < deadline, f"{receiver.statuses(path)}\n{self.log_tail()}"
            time.sleep(0.1)

    def wait_completed(self, subject_request_id: str) -> dict:
        deadline = time.monotonic() + DEADLINE_SECONDS
        seen = []
        while True:
            response = self.signed("GET", f"/opendsr/v1/requests/{subject_request_id}")
            assert response.status_code == 200, response.text
            status = response.json()
            if not seen or seen[-1] != status["request_status"]:
                seen.append(status["request_status"])
            if status["request_status"] == "completed":
                return status
            assert status["request_status"] in ("pending", "in_progress"), seen
            assert time.monotonic() < deadline, f"still {seen}\n{self.log_tail()}"
            time.sleep(0.2)


def test_access_and_erasure_over_http_with_real_processes(tmp_path, receiver):
    started = time.monotonic()
    ca = make_ca(tmp_path / "pki")
    moto, endpoint = start_moto()
    try:
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        _run_flow(tmp_path, ca, endpoint, s3, receiver)
    finally:
        moto.stop()
    assert time.monotonic() - started < 60


def _run_flow(tmp_path: Path, ca: Authority, endpoint: str, s3, receiver: Receiver) -> None:
    broker = os.environ.get("PRIVACY_TEST_BROKER_URL", "")
    prefix = f"flow-{uuid.uuid4().hex[:8]}"
    port = helpers.free_port()
    base = f"http://127.0.0.1:{port}"
    env = helpers.service_env(
        tmp_path / "instance",
        PRIVACY_DATABASE_URL=database_url(),
        PRIVACY_BROKER_URL=broker if broker.startswith("redis://") else "",
        PRIVACY_STORAGE_URL=f"s3://{BUCKET}/{prefix}",
        PRIVACY_S3_ENDPOINT_URL=endpoint,
        PRIVACY_S3_REGION=REGION,
        PRIVACY_OPENDSR_KEY_FILE=str(ca.processor_key_file),
        PRIVACY_OPENDSR_CERT_FILE=str(ca.processor_cert_file),
        PRIVACY_OUTBOX_PATH=str(tmp_path / "outbox"),
        PRIVACY_BIND=f"127.0.0.1:{port}",
        PRIVACY_BASE_URL=base,
        WEB_CONCURRENCY="1",
        **AWS_ENV,
    )
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        env.pop(name, None)
    web_log, worker_log = tmp_path / "gunicorn.log", tmp_path / "worker.log"
    web = [str(helpers.BIN / "gunicorn"), "--config", "gunicorn.conf.py", "wsgi:app"]
    worker = [
        str(helpers.BIN / "celery"),
        "--app",
        "workers.celery_app",
        "worker",
        "--pool",
        "solo",
        "--loglevel",
        "INFO",
        "--without-mingle",
        "--without-gossip",
    ]
    http = requests.Session()
    http.trust_env = False  # loopback only: no proxy from the environment
    with helpers.running(web, env, web_log), helpers.running(worker, env, worker_log):
        # The account is made while both processes start (the schema is the session's).
        token = helpers.create_account(env, "Acme", "admin@acme.example")["api_token"]
        helpers.wait_http(f"{base}/healthz")

        # The published certificate is the CA-issued one, for privacy.test.
        published = http.get(f"{base}/opendsr/v1/certificate", timeout=10).content
        certificate = x509.load_pem_x509_certificate(published)
        assert published == ca.processor_cert_file.read_bytes()
        assert chains_to(certificate, ca.certificate)
        assert names(certificate) == [DOMAIN]
        controller = Controller(base, token, certificate, http, [web_log, worker_log])
        discovery = controller.signed("GET", "/opendsr/v1/discovery").json()
        assert discovery["processor_certificate"] == f"{base}/opendsr/v1/certificate"

        created = controller.call("POST", "/api/v1/subjects", json={"name": NAME, "email": EMAIL})
        assert created.status_code == 201, created.text
        subject_id = created.json()["id"]

        # Access: completed, called back on each status change, with a package in JSON and
        # PDF behind results_url.
        access_id = controller.submit("access", receiver.url("/access"))
        access = controller.wait_completed(access_id)
        assert access["results_count"] == 2
        controller.wait_callbacks(receiver, "/access")
        package = http.get(access["results_url"] + "/access.json", timeout=10)
        assert package.status_code == 200, controller.log_tail()
        assert package.headers["Content-Type"].startswith("application/json")
        assert EMAIL in package.text and NAME in package.text
        pdf = http.get(access["results_url"] + "/access.pdf", timeout=10)
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")

        # Erasure: completed and called back; the subject is gone, the ledger has its entry.
        erasure_id = controller.submit("erasure", receiver.url("/erasure"))
        controller.wait_completed(erasure_id)
        controller.wait_callbacks(receiver, "/erasure")
        listed = controller.call("GET", "/api/v1/subjects").json()["items"]
        assert subject_id not in [item["id"] for item in listed]
        assert controller.call("GET", f"/api/v1/subjects/{subject_id}").status_code == 404
        ledger = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/erasure-ledger/")
        keys = [item["Key"] for item in ledger.get("Contents", [])]
        assert len(keys) == 1, keys
        entry = s3.get_object(Bucket=BUCKET, Key=keys[0])["Body"].read()
        assert EMAIL.encode() not in entry and NAME.encode() not in entry

    # Every callback signed by the CA-issued certificate, for the URL it went to.
    assert len(receiver.hits) == 4
    for hit in receiver.hits:
        assert hit.headers["X-OpenDSR-Processor-Domain"] == DOMAIN
        assert hit.headers["X-OpenGDPR-Signature"] == hit.headers["X-OpenDSR-Signature"]
        assert signed_by(certificate, hit.body, hit.headers)
        body = json.loads(hit.body)
        assert body["status_callback_url"] == receiver.url(hit.path)
        assert ("results_url" in body) == (body["request_status"] == "completed")
    completed = [json.loads(h.body) for h in receiver.hits if h.path == "/access"][-1]
    assert completed["subject_request_id"] == access_id
    assert completed["results_url"] == access["results_url"]
    logs = web_log.read_text(errors="replace") + worker_log.read_text(errors="replace")
    assert EMAIL not in logs
