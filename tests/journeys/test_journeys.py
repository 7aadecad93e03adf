"""Every user's journey, walked over the real processes the way that user does: HTTP and the
`flask` CLI only. They share one running service, in this order, and end with stopping it.

What these catch that tests through Flask's test client and eager tasks cannot: a response
streamed after its request's session was closed (gunicorn), links built by the worker or a
CLI command from the wrong address, a delivery retried or stopped wrongly by the real
worker, mail as it is written to disk, files left readable, and a dirty stop.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import sqlite3
import stat
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from tests import helpers
from tests.journeys.conftest import CSRF
from tests.journeys.conftest import account
from tests.journeys.conftest import bearer
from tests.journeys.conftest import sign_in

pytestmark = [pytest.mark.journey, pytest.mark.integration]

ADMIN = "Ada.Admin@Acme.example"  # its case is kept, and matched whatever the case
PEOPLE = [
    ("Zoë Ångström", "Zoe.Angstrom@example.se"),
    ("Jürgen Müller", "Juergen.Mueller@Example.DE"),
    ("Ana Lima", "ana.lima@example.org"),
    ("李小龙", "bruce.lee@example.cn"),
]
# What the journeys pass on to each other (they run in this order on one service).
state: dict = {}


def _acme(service) -> dict:
    if "acme" not in state:
        state["acme"] = account(service, "Acme GmbH", ADMIN)
    return state["acme"]


# -- the admin -------------------------------------------------------------------------


def test_the_admin_creates_the_account_and_signs_in_from_the_mail(service):
    acme = _acme(service)
    assert acme["api_token"].startswith("prv_")

    browser = sign_in(service, ADMIN.lower())  # typed in another case: the same person
    members = browser.get(service.url("/members"), timeout=30)
    assert members.status_code == 200
    assert ADMIN in members.text  # as it was given
    mail = service.mails()[-1]
    assert mail.to == ADMIN  # mailed to the address as given


# -- the inventory ---------------------------------------------------------------------


def test_the_inventory_round_trips_through_import_export_and_another_account(service):
    acme = _acme(service)
    api = service.session()
    api.headers.update(bearer(acme["api_token"]))
    crm = api.post(
        service.url("/api/v1/systems"), json={"name": "CRM", "kind": "crm", "region": "eu"}
    )
    assert crm.status_code == 201, crm.text
    name, address = PEOPLE[0]
    created = api.post(
        service.url("/api/v1/subjects"),
        json={"name": name, "email": address, "systems": [crm.json()["id"]]},
    )
    assert created.status_code == 201, created.text
    assert created.json()["email"] == address

    rows = "name,email,external_ref,source,systems\n" + "".join(
        f"{n},{e},ref-{i},import,CRM\n" for i, (n, e) in enumerate(PEOPLE[1:3], start=1)
    )
    imported = api.post(
        service.url("/api/v1/subjects/import"),
        data=rows.encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert imported.status_code == 201 and imported.json()["imported"] == 2, imported.text
    lines = json.dumps({"name": PEOPLE[3][0], "email": PEOPLE[3][1], "systems": ["CRM"]}) + "\n"
    imported = api.post(
        service.url("/api/v1/subjects/import"),
        data=lines.encode(),
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert imported.status_code == 201, imported.text
    shouting = json.dumps({"name": "Bruce", "email": PEOPLE[3][1].upper()}) + "\n"
    again = api.post(
        service.url("/api/v1/subjects/import"),
        data=shouting.encode(),  # the same person, in capitals
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert again.status_code == 409, again.text

    found = api.post(service.url("/api/v1/subjects/lookup"), json={"email": address.upper()})
    assert found.status_code == 200 and found.json()["email"] == address

    # Mistakes users make with curl: clear answers.
    as_form = api.post(
        service.url("/api/v1/subjects"),
        data=json.dumps({"name": "X", "email": "x@example.org"}),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert as_form.status_code == 415 and "application/json" in as_form.json()["message"]
    broken = api.post(
        service.url("/api/v1/subjects"),
        data='{"name": "X",',
        headers={"Content-Type": "application/json"},
    )
    assert broken.status_code == 400 and "line 1, column 14" in broken.json()["message"]

    # Both exports stream under gunicorn, after the request's own session is gone.
    jsonl = api.get(service.url("/api/v1/subjects/export"), timeout=60)
    assert jsonl.status_code == 200
    exported = [json.loads(line) for line in jsonl.text.splitlines()]
    assert sorted(row["email"] for row in exported) == sorted(e for _, e in PEOPLE)
    as_csv = api.get(service.url("/api/v1/subjects/export"), params={"format": "csv"})
    assert as_csv.status_code == 200
    assert len(list(csv.DictReader(io.StringIO(as_csv.text)))) == len(PEOPLE)
    audit = api.get(service.url("/api/v1/audit"), params={"action": "subjects.exported"}).json()
    assert [e["data"] for e in audit["items"]] == [
        {"format": "csv", "count": 4, "complete": True},
        {"format": "jsonl", "count": 4, "complete": True},
    ]

    # Each export imports as it is into another account that has the same system.
    for fmt, body, content_type in (
        ("csv", as_csv.content, "text/csv"),
        ("jsonl", jsonl.content, "application/x-ndjson"),
    ):
        other = account(service, f"Beta {fmt}", f"admin-{fmt}@beta.example")
        headers = {**bearer(other["api_token"]), "Content-Type": content_type}
        system = service.session().post(
            service.url("/api/v1/systems"),
            json={"name": "CRM", "kind": "crm", "region": "eu"},
            headers=bearer(other["api_token"]),
        )
        assert system.status_code == 201
        moved = service.session().post(
            service.url("/api/v1/subjects/import"), data=body, headers=headers
        )
        assert moved.status_code == 201 and moved.json()["imported"] == 4, moved.text


# -- the controller --------------------------------------------------------------------


class Receiver:
    """A controller's callback endpoint on loopback; with `failures`, it answers 503 to the
    first that many POSTs of each status of each request."""

    def __init__(self, failures: int = 0) -> None:
        self.hits: list[tuple[dict, bytes]] = []
        received = self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append((dict(self.headers.items()), body))
                sent = json.loads(body)
                same = [
                    b
                    for _, b in received
                    if json.loads(b)["subject_request_id"] == sent["subject_request_id"]
                    and json.loads(b)["request_status"] == sent["request_status"]
                ]
                self.send_response(503 if len(same) <= failures else 204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/opendsr/callback"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self, request_id: str) -> list[dict]:
        found = [json.loads(body) for _, body in self.hits]
        return [b for b in found if b["subject_request_id"] == request_id]

    def wait(self, request_id: str, status: str, count: int = 1, timeout: float = 120) -> dict:
        """The `count`th POST of `status` for the request."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [b for b in self.bodies(request_id) if b["request_status"] == status]
            if len(found) >= count:
                return found[count - 1]
            time.sleep(0.3)
        raise AssertionError(f"no {status} callback for {request_id}: {self.bodies(request_id)}")


def _verify(certificate: x509.Certificate, body: bytes, signature: str) -> None:
    certificate.public_key().verify(
        base64.b64decode(signature), body, padding.PKCS1v15(), hashes.SHA256()
    )


def _opendsr(service, token: str, kind: str, email: str, callback: str) -> str:
    request_id = str(uuid.uuid4())
    body = {
        "regulation": "gdpr",
        "subject_request_id": request_id,
        "subject_request_type": kind,
        "submitted_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "subject_identities": [
            {"identity_type": "email", "identity_value": email, "identity_format": "raw"}
        ],
        "status_callback_urls": [callback],
    }
    answer = service.session().post(
        service.url("/opendsr/v1/requests"), json=body, headers=bearer(token), timeout=30
    )
    assert answer.status_code == 201, answer.text
    state.setdefault("signed_answers", []).append(answer)
    return request_id


def test_the_controller_gets_signed_callbacks_and_downloads_the_results(service):
    acme = _acme(service)
    receiver = Receiver()
    discovery = service.session().get(service.url("/opendsr/v1/discovery")).json()
    pem = service.session().get(discovery["processor_certificate"]).content
    certificate = x509.load_pem_x509_certificate(pem)

    access = _opendsr(service, acme["api_token"], "access", PEOPLE[1][1], receiver.url)
    erasure = _opendsr(service, acme["api_token"], "erasure", PEOPLE[2][1], receiver.url)
    done = {rid: receiver.wait(rid, "completed") for rid in (access, erasure)}

    for headers, body in receiver.hits:
        _verify(certificate, body, headers["X-OpenDSR-Signature"])
    for answer in state["signed_answers"]:
        _verify(certificate, answer.content, answer.headers["X-OpenDSR-Signature"])
    assert [b["request_status"] for b in receiver.bodies(access)] == ["in_progress", "completed"]
    for request_id, body in done.items():
        page = service.check_link(body["results_url"])
        files = re.findall(r'href="(/dsr/results/[^"]+/[^"]+)"', page.text)
        assert files, page.text[:1000]
        for path in files:
            download = service.check_link(service.url(path))
            if path.endswith(".pdf"):
                assert download.content.startswith(b"%PDF")
            elif path.endswith(".json"):
                document = download.json()
                if request_id == access:
                    assert PEOPLE[1][1] in json.dumps(document, ensure_ascii=False)
    gone = service.session().post(
        service.url("/api/v1/subjects/lookup"),
        json={"email": PEOPLE[2][1]},
        headers=bearer(acme["api_token"]),
    )
    assert gone.status_code == 404  # erased


def test_a_callback_receiver_that_fails_gets_each_try_once_from_the_worker(service):
    """The worker retries after 2 s, then 4 s: every try is counted and sent once, and the
    third one delivers; nothing is sent again afterwards."""
    acme = _acme(service)
    receiver = Receiver(failures=2)
    request_id = _opendsr(service, acme["api_token"], "access", PEOPLE[3][1], receiver.url)
    receiver.wait(request_id, "completed", count=3, timeout=180)
    time.sleep(3)  # a duplicate or an extra try would arrive by now
    statuses = [b["request_status"] for b in receiver.bodies(request_id)]
    assert statuses.count("in_progress") == 3 and statuses.count("completed") == 3, statuses
    detail = (
        service.session()
        .get(
            service.url(f"/api/v1/requests/{_request_of(service, acme, request_id)}"),
            headers=bearer(acme["api_token"]),
        )
        .json()
    )
    assert sorted((c["status"], c["state"], c["attempts"]) for c in detail["callbacks"]) == [
        ("completed", "delivered", 3),
        ("in_progress", "delivered", 3),
    ]


def _request_of(service, acme: dict, subject_request_id: str) -> str:
    listed = (
        service.session()
        .get(service.url("/api/v1/requests"), headers=bearer(acme["api_token"]))
        .json()
    )
    (found,) = [r for r in listed["items"] if r["subject_request_id"] == subject_request_id]
    return found["id"]


# -- the data subject ------------------------------------------------------------------


def test_a_person_asks_through_the_form_confirms_by_mail_and_gets_the_answer(service):
    acme = _acme(service)
    name, address = PEOPLE[0]
    browser = service.session()
    form_url = service.url(f"/privacy-request/{acme['account_id']}")
    form = browser.get(form_url)
    seen = len(service.mails())
    sent = browser.post(
        form_url,
        data={
            "csrf_token": CSRF.search(form.text).group(1),
            "kind": "access",
            "email": address,
        },
        allow_redirects=False,
    )
    assert sent.status_code == 303
    assert address.split("@")[0].lower() not in sent.headers["Location"].lower()

    confirm = service.wait_mail(address, "Confirm your privacy request", seen)
    assert confirm.to == address
    (link,) = [link for link in confirm.links() if "/privacy-request/verify/" in link]
    shown = service.check_link(link, browser)
    seen = len(service.mails())
    confirmed = browser.post(
        service.url("/privacy-request/verify"),
        data={"csrf_token": CSRF.search(shown.text).group(1), "token": link.rsplit("/", 1)[1]},
    )
    assert confirmed.status_code == 200

    completed = service.wait_mail(address, "is complete", seen)
    links = completed.links()
    assert any("/dsr/results/" in link for link in links), completed.raw[:2000]
    for link in links:
        service.check_link(link)


# -- the DPO ---------------------------------------------------------------------------


def test_the_dpo_seeds_the_register_and_customers_get_their_documents(service):
    acme = _acme(service)
    without = service.cli("processors", "seed", check=False)
    assert without.returncode != 0 and "PRIVACY_BASE_URL" in without.stderr
    seen = len(service.mails())
    seeded = service.cli("processors", "seed", base_url=True)
    assert '"created": ' in seeded.stdout

    public = service.session().get(service.url("/subprocessors"))
    assert public.status_code == 200 and "Amazon Web Services" in public.text
    assert service.session().get(service.url("/subprocessors/feed")).status_code == 200
    notice = service.wait_mail(ADMIN, "Sub-processor change notice", seen)
    for link in notice.links():
        service.check_link(link)

    for path in (
        "/api/v1/documents/subprocessor-annex.pdf",
        "/api/v1/documents/record-of-processing.pdf",
    ):
        document = service.session().get(service.url(path), headers=bearer(acme["api_token"]))
        assert document.status_code == 200 and document.content.startswith(b"%PDF"), path


# -- the log pipeline ------------------------------------------------------------------


def test_a_log_pipeline_scrubs_over_http_and_with_the_command(service, tmp_path):
    acme = _acme(service)
    task = "12345678-88a8-4c2d-9f3e-0123456789ab"
    line = f"login ok for ana.lima@example.org from 203.0.113.9 task {task}"
    scrubbed = service.session().post(
        service.url("/api/v1/scrub"), json={"text": line}, headers=bearer(acme["api_token"])
    )
    assert scrubbed.status_code == 200
    text = scrubbed.json()["text"]
    assert "ana.lima" not in text and "203.0.113.9" not in text
    assert task in text

    source, target = tmp_path / "app.log", tmp_path / "clean.log"
    source.write_text(line + "\n")
    result = service.run(str(helpers.BIN / "privacy-scrub"), str(source), "-o", str(target))
    assert result.returncode == 0, result.stderr[-2000:]
    assert target.read_text().strip() == text


# -- the operator ----------------------------------------------------------------------


def test_the_operator_backs_up_restores_into_a_new_database_and_drills(service, tmp_path):
    _acme(service)
    backup_id = service.cli("backups", "run", "--quiet").stdout.strip().splitlines()[-1]
    assert backup_id in service.cli("backups", "list").stdout

    if service.database_url:
        target, drop = helpers.postgres_database(service.database_url)
    else:
        target, drop = f"sqlite:///{tmp_path / 'restored.sqlite3'}", None
    try:
        restored = service.cli("backups", "restore", backup_id, "--target", target, "--quiet")
        assert json.loads(restored.stdout)["backup"] == backup_id
        emails = _restored_subject_count(target)
        assert emails == len(PEOPLE) * 3 - 1  # three accounts' copies; one person erased
    finally:
        if drop:
            drop()
    drill = service.cli("backups", "drill")
    assert "passed" in drill.stdout

    # What holds personal data on disk is the owner's alone.
    instance = service.instance
    assert stat.S_IMODE(instance.stat().st_mode) == 0o700
    if not service.database_url:
        for name in ("privacy.sqlite3", "privacy.sqlite3-wal", "privacy.sqlite3-shm"):
            path = instance / name
            if path.exists():
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
    for folder in ("storage", "outbox", "backups", "broker"):
        for path in [instance / folder, *(instance / folder).rglob("*")]:
            if path.exists():
                expected = 0o700 if path.is_dir() else 0o600
                assert stat.S_IMODE(path.stat().st_mode) == expected, path


def _restored_subject_count(url: str) -> int:
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
            return connection.execute("SELECT count(*) FROM subjects").fetchone()[0]
    import psycopg
    from sqlalchemy.engine import make_url

    libpq = make_url(url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(libpq) as connection:
        return connection.execute("SELECT count(*) FROM subjects").fetchone()[0]


# -- every link, and the stop ----------------------------------------------------------


def test_every_link_in_every_mail_answers(service):
    mails = service.mails()
    assert mails
    for mail in mails:
        for link in mail.links():
            if link not in service.checked_links and "/auth/link/" not in link:
                service.check_link(link)  # (sign-in links are single use: checked before)


def test_the_processes_log_task_ids_whole(service):
    tasks = re.findall(r"Task [a-z_.]+\[([^\]]*)\]", service.output())
    assert tasks, service.tail()
    for task_id in tasks:
        assert re.fullmatch(
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", task_id
        )


def test_stopping_is_prompt_and_clean(service):
    stopped = service.stop()

    assert stopped["status"] == 0, stopped["output"][-3000:]
    assert stopped["seconds"] < 10, stopped["output"][-3000:]
    assert "SIGKILL" not in stopped["output"]
    assert "web.1 stopped (status 0)" in stopped["output"]
    assert "worker.1 stopped (status 0)" in stopped["output"]
