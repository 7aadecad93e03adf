"""Outgoing mail: the outbox folder, real SMTP servers (aiosmtpd) and the Celery task."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import smtplib
import socket
import ssl
import stat
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.oid import NameOID
from jinja2 import ChoiceLoader
from jinja2 import DictLoader
from sqlalchemy import event
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import OperationalError

from privacy import mail
from privacy import outbound
from privacy.errors import TooManyRequests
from privacy.extensions import db
from privacy.extensions import limiter
from privacy.mail import tasks as mail_tasks
from tests.queue import Job

SENDER = "Datenschutz Team <privacy@example.org>"
OUTBOX_NAME = re.compile(r"^\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{8}\.eml$")


def parse(raw: bytes) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(raw)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def outbox(outbox, app, monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_FROM", SENDER)
    return outbox


def outbox_messages(outbox) -> list[EmailMessage]:
    return outbox.messages()


# --- outbox ---------------------------------------------------------------------------------


def test_outbox_message_parses_back_with_headers_body_and_attachment(outbox):
    message_id = mail.send(
        "Zoë Ångström <zoe@example.com>",
        "Ihre Auskunft – Zoë",
        "Hallo Zoë,\nanbei Ihre Daten. 李小龙\n",
        "<p>Hallo Zoë, <b>李小龙</b></p>",
        attachments=[("auskunft.pdf", b"%PDF-1.7 fake", "application/pdf")],
    )

    files = list(outbox.glob("*"))
    assert len(files) == 1
    assert OUTBOX_NAME.match(files[0].name)
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    message = parse(files[0].read_bytes())
    assert message["Message-ID"] == message_id
    assert message_id.endswith("@example.org>")
    assert message["From"].addresses[0].addr_spec == "privacy@example.org"
    assert message["To"].addresses[0].display_name == "Zoë Ångström"
    assert message["To"].addresses[0].addr_spec == "zoe@example.com"
    assert message["Subject"] == "Ihre Auskunft – Zoë"
    sent_at = parsedate_to_datetime(message["Date"])
    assert abs(sent_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
    assert message.get_body(("plain",)).get_content() == "Hallo Zoë,\nanbei Ihre Daten. 李小龙\n"
    assert "<b>李小龙</b>" in message.get_body(("html",)).get_content()
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "auskunft.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == b"%PDF-1.7 fake"


def test_outbox_files_sort_in_sending_order(outbox):
    first = mail.send("a@example.com", "first", "1")
    second = mail.send(["b@example.com", "c@example.com"], "second", "2")

    messages = outbox_messages(outbox)
    assert [m["Message-ID"] for m in messages] == [first, second]
    assert [a.addr_spec for a in messages[1]["To"].addresses] == ["b@example.com", "c@example.com"]
    assert messages[0].get_content_type() == "text/plain"
    assert not list(outbox.glob(".*"))


def test_control_characters_in_headers_become_spaces_and_the_message_goes_out(outbox):
    mail.send(
        "Zoë\r\nÅngström <zoe@example.com>",
        "Hello\r\nBcc: victim@example.com\x00\u2028end",
        "body",
        attachments=[("a\nb.pdf", b"%PDF", "application/pdf")],
    )

    (message,) = outbox_messages(outbox)
    assert message["Subject"] == "Hello  Bcc: victim@example.com  end"
    assert message["Bcc"] is None
    assert [a.addr_spec for a in message["To"].addresses] == ["zoe@example.com"]
    assert message["To"].addresses[0].display_name == "Zoë Ångström"
    assert next(message.iter_attachments()).get_filename() == "a b.pdf"


@pytest.mark.parametrize("to", ["not-an-address", [], ""])
def test_recipients_without_address_are_refused(outbox, to):
    with pytest.raises(ValueError):
        mail.send(to, "subject", "body")


def test_log_lines_name_neither_address_nor_subject(outbox, caplog):
    caplog.set_level("DEBUG", logger="privacy.mail")

    message_id = mail.send("Zoë <zoe@example.com>", "Secret subject", "Secret body")

    assert message_id in caplog.text
    for secret in ("zoe@", "Zoë", "Secret"):
        assert secret not in caplog.text


def test_render_and_send_uses_text_and_optional_html_templates(app, outbox, monkeypatch):
    templates = DictLoader(
        {
            "mail/greeting.txt": "Hello {{ name }}, your request {{ ref }} is done.",
            "mail/greeting.html": "<p>Hello {{ name }}, your request {{ ref }} is done.</p>",
            "mail/plain.txt": "Only text for {{ name }}.",
        }
    )
    monkeypatch.setattr(app.jinja_env, "loader", ChoiceLoader([templates, app.jinja_env.loader]))

    mail.render_and_send("a@example.com", "Done", "greeting", name="<Zoë>", ref="R-1")
    mail.render_and_send("a@example.com", "Plain", "plain", name="Zoë")

    greeting, plain = outbox_messages(outbox)
    assert greeting["Subject"] == "Done"
    assert greeting.get_body(("plain",)).get_content().strip() == (
        "Hello <Zoë>, your request R-1 is done."
    )
    assert "Hello &lt;Zoë&gt;" in greeting.get_body(("html",)).get_content()
    assert plain.get_content_type() == "text/plain"
    assert plain.get_content().strip() == "Only text for Zoë."


# --- SMTP URL parsing -----------------------------------------------------------------------


def test_smtp_url_credentials_are_url_decoded():
    settings = mail.smtp_settings("smtp://us%40er:p%40ss%3Aw%2Fd@mail.example.com?starttls=1")

    assert (settings.username, settings.password) == ("us@er", "p@ss:w/d")
    assert (settings.host, settings.port, settings.starttls) == ("mail.example.com", 587, True)
    assert settings.implicit_tls is False


@pytest.mark.parametrize(
    ("url", "port", "implicit_tls", "starttls"),
    [
        ("smtps://mail.example.com", 465, True, False),
        ("smtp://mail.example.com", 25, False, False),
        ("smtp://127.0.0.1:8025", 8025, False, False),
        ("smtp://mail.example.com:2525?starttls=true&timeout=5", 2525, False, True),
    ],
)
def test_smtp_url_defaults(url, port, implicit_tls, starttls):
    settings = mail.smtp_settings(url)

    assert (settings.port, settings.implicit_tls, settings.starttls) == (
        port,
        implicit_tls,
        starttls,
    )


@pytest.mark.parametrize(
    "url", ["http://mail.example.com", "smtp://", "smtp://user:secret@mail.example.com:25"]
)
def test_smtp_url_refuses_bad_schemes_and_cleartext_credentials(url):
    with pytest.raises(ValueError):
        mail.smtp_settings(url)


# --- real SMTP servers ----------------------------------------------------------------------


class Collector:
    """aiosmtpd handler keeping every accepted envelope."""

    def __init__(self, refuse: str | None = None) -> None:
        self.envelopes = []
        self.rcpt_attempts = 0
        self.refuse = refuse

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        self.rcpt_attempts += 1
        if address == self.refuse:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.envelopes.append(envelope)
        return "250 OK"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == b"us@er" and auth_data.password == b"p@ss:word"
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it."""
    folder = tmp_path_factory.mktemp("tls")
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "privacy test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.DNSName("localhost"),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_file, cert_file, key_file


def server_tls_context(tls_files) -> ssl.SSLContext:
    _ca, cert_file, key_file = tls_files
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


@pytest.fixture
def smtp_server():
    """Factory starting aiosmtpd servers on free ports; each test chooses TLS and auth."""
    controllers = []

    def start(handler, **options) -> int:
        port = free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
        controller.start()
        controllers.append(controller)
        return port

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture
def smtp_config(app, monkeypatch, tmp_path):
    monkeypatch.setitem(app.config, "OUTBOX_PATH", str(tmp_path / "outbox"))
    monkeypatch.setitem(app.config, "MAIL_FROM", SENDER)

    def configure(url: str) -> None:
        monkeypatch.setitem(app.config, "SMTP_URL", url)

    return configure


@pytest.mark.integration
def test_smtp_delivers_to_every_recipient(smtp_server, smtp_config, tmp_path):
    handler = Collector()
    port = smtp_server(handler)
    smtp_config(f"smtp://127.0.0.1:{port}")

    message_id = mail.send(
        ["Zoë Ångström <zoe@example.com>", "dpo@example.net"],
        "Löschbestätigung",
        "Ihre Daten wurden gelöscht. 李小龙",
        "<p>gelöscht</p>",
    )

    [envelope] = handler.envelopes
    assert envelope.mail_from == "privacy@example.org"
    assert envelope.rcpt_tos == ["zoe@example.com", "dpo@example.net"]
    message = parse(envelope.original_content)
    assert message["Message-ID"] == message_id
    assert message["Subject"] == "Löschbestätigung"
    assert message["To"].addresses[0].display_name == "Zoë Ångström"
    body = message.get_body(("plain",)).get_content()
    assert body.strip() == "Ihre Daten wurden gelöscht. 李小龙"
    assert not (tmp_path / "outbox").exists()


@pytest.mark.integration
def test_smtp_starttls_with_url_encoded_credentials(
    smtp_server, smtp_config, tls_files, monkeypatch
):
    handler = Collector()
    port = smtp_server(
        handler,
        tls_context=server_tls_context(tls_files),
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files[0]))
    smtp_config(f"smtp://us%40er:p%40ss%3Aword@127.0.0.1:{port}?starttls=1")

    mail.send("a@example.com", "over STARTTLS", "body")

    [envelope] = handler.envelopes
    assert parse(envelope.original_content)["Subject"] == "over STARTTLS"


@pytest.mark.integration
def test_smtp_wrong_password_is_refused(smtp_server, smtp_config, tls_files, monkeypatch):
    port = smtp_server(
        Collector(),
        tls_context=server_tls_context(tls_files),
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files[0]))
    smtp_config(f"smtp://us%40er:wrong@127.0.0.1:{port}?starttls=1")

    with pytest.raises(smtplib.SMTPAuthenticationError):
        mail.send("a@example.com", "subject", "body")


@pytest.mark.integration
def test_smtps_implicit_tls_verifies_the_server_certificate(
    smtp_server, smtp_config, tls_files, monkeypatch
):
    handler = Collector()
    port = smtp_server(handler, ssl_context=server_tls_context(tls_files))
    smtp_config(f"smtps://127.0.0.1:{port}")

    # Not trusted yet: the system CAs do not know our throwaway CA.
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files[1].with_name("missing.pem")))
    with pytest.raises(ssl.SSLCertVerificationError):
        mail.send("a@example.com", "over TLS", "body")

    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files[0]))
    mail.send("a@example.com", "over TLS", "body")

    [envelope] = handler.envelopes
    assert parse(envelope.original_content)["Subject"] == "over TLS"


# --- Celery task ----------------------------------------------------------------------------


def test_send_task_is_registered_with_retry_policy(app):
    task = app.extensions["celery"].tasks["mail.send"]

    assert task.name == mail_tasks.send_task.name == "mail.send"
    assert task.acks_late is True
    assert task.max_retries == 5
    assert smtplib.SMTPServerDisconnected in task.autoretry_for
    assert ConnectionError in task.autoretry_for


def test_send_task_writes_to_the_outbox(app, outbox, queue):
    task = app.extensions["celery"].tasks["mail.send"]

    task.delay(["zoe@example.com"], "Queued", "text body", "<p>html body</p>")
    queue.run("mail.send")

    [message] = outbox_messages(outbox)
    assert message["Subject"] == "Queued"
    assert message.get_body(("html",)).get_content().strip() == "<p>html body</p>"


@pytest.mark.integration
def test_send_task_retries_a_dropped_connection(app, smtp_server, smtp_config, monkeypatch, queue):
    handler = Collector()
    port = smtp_server(handler)
    smtp_config(f"smtp://127.0.0.1:{port}")
    real_deliver = mail._deliver_smtp
    attempts = []

    def flaky_deliver(*args, **kwargs):
        attempts.append(1)
        if len(attempts) == 1:
            raise smtplib.SMTPServerDisconnected("connection dropped")
        return real_deliver(*args, **kwargs)

    monkeypatch.setattr(mail, "_deliver_smtp", flaky_deliver)

    app.extensions["celery"].tasks["mail.send"].delay("a@example.com", "retried", "body")
    first, second = queue.run("mail.send")

    assert first.retried and queue.ran[1].job.retries == 1
    assert second.result.startswith("<")  # the Message-ID
    assert len(attempts) == 2
    assert len(handler.envelopes) == 1


@pytest.mark.integration
def test_send_task_does_not_retry_a_refused_recipient(app, smtp_server, smtp_config, queue):
    handler = Collector(refuse="gone@example.com")
    port = smtp_server(handler)
    smtp_config(f"smtp://127.0.0.1:{port}")

    app.extensions["celery"].tasks["mail.send"].delay("gone@example.com", "s", "body")
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        queue.run("mail.send")

    assert queue.jobs == []  # no retry queued
    assert handler.rcpt_attempts == 1
    assert handler.envelopes == []


# --- links stay whole in the raw message ------------------------------------------------

LONG_LINK = "http://127.0.0.1:8123/privacy-request/verify/" + "Ab3_-" * 12


def test_a_long_link_stays_whole_in_the_raw_outbox_file(outbox):
    mail.send("zoe@example.com", "Bestätigen", f"Hallo Zoë,\n{LONG_LINK}\n", f"<a>{LONG_LINK}</a>")
    ascii_only = "Confirm"
    mail.send("zoe@example.com", ascii_only, f"Hello,\n{LONG_LINK}\n")

    raws = [path.read_bytes() for path in sorted(outbox.glob("*.eml"))]
    assert len(raws) == 2
    for raw in raws:
        assert LONG_LINK.encode() in raw  # no soft line break, no =3D
        assert b"quoted-printable" not in raw
    assert b"Content-Transfer-Encoding: 8bit" in raws[0]
    assert b"Content-Transfer-Encoding: 7bit" in raws[1]
    assert outbox_messages(outbox)[0].get_body(("plain",)).get_content().startswith("Hallo Zoë")


def test_a_line_beyond_the_rfc_limit_is_quoted_printable(outbox):
    mail.send("zoe@example.com", "Long", "x" * 1200 + "\n")

    (path,) = outbox.glob("*.eml")
    assert b"quoted-printable" in path.read_bytes()
    assert outbox_messages(outbox)[0].get_content() == "x" * 1200 + "\n"


class No8BitMime(Collector):
    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802
        session.host_name = hostname
        return [line for line in responses if "8BITMIME" not in line]


@pytest.mark.integration
def test_8bit_mail_is_announced_to_smtp_and_recoded_for_servers_without_8bitmime(
    smtp_server, smtp_config
):
    modern, old = Collector(), No8BitMime()
    text = f"Hallo Zoë,\n{LONG_LINK}\n"
    smtp_config(f"smtp://127.0.0.1:{smtp_server(modern)}")
    mail.send("zoe@example.com", "Hallo", text)
    smtp_config(f"smtp://127.0.0.1:{smtp_server(old)}")
    mail.send("zoe@example.com", "Hallo", text)

    (sent,) = modern.envelopes
    assert "BODY=8BITMIME" in sent.mail_options
    assert LONG_LINK.encode() in sent.original_content
    (recoded,) = old.envelopes
    assert "BODY=8BITMIME" not in recoded.mail_options
    assert b"quoted-printable" in recoded.original_content
    assert parse(recoded.original_content).get_content().replace("\r\n", "\n") == text


# --- the queue: every message sent effectively once -------------------------------------


def queued_rows() -> list[mail.QueuedMail]:
    db.session.commit()  # end our read snapshot: the worker's runs commit on their own
    return list(db.session.scalars(select(mail.QueuedMail).order_by(mail.QueuedMail.id)))


def queue_message(to: str = "zoe@example.com", subject: str = "Queued") -> None:
    mail.send_after_commit(to, subject, "text body")
    db.session.commit()


def written(outbox) -> list[EmailMessage]:
    """The outbox as it is (reading outbox.messages() would run the queued jobs first)."""
    return [parse(path.read_bytes()) for path in sorted(outbox.folder.glob("*.eml"))]


@pytest.fixture
def failing_commits(app):
    """`fail(times, when)`: the next `times` commits made while `when()` holds meet a locked
    database, as another process's write lock would make them (SQLite's "database is
    locked"), whoever commits. Returns how many it failed."""
    plan = {"times": 0, "when": lambda: False, "failed": 0}

    def on_commit(connection) -> None:
        if plan["failed"] < plan["times"] and plan["when"]():
            plan["failed"] += 1
            raise OperationalError("COMMIT", {}, Exception("database is locked"))

    def fail(times: int, when) -> dict:
        plan.update(times=times, when=when)
        return plan

    event.listen(db.engine, "commit", on_commit)
    yield fail
    event.remove(db.engine, "commit", on_commit)


def test_a_failed_commit_after_sending_does_not_send_the_message_again(
    outbox, queue, monkeypatch, failing_commits
):
    """The commit that marks a sent message meets a locked database once: it is written again
    in place, the message goes out once, and the task is not run again."""
    monkeypatch.setattr(outbound, "RECORD_PAUSES", (0, 0, 0))
    queue_message()
    plan = failing_commits(1, when=lambda: bool(written(outbox)))

    runs = queue.run("mail.send_queued")

    assert plan["failed"] == 1
    (message,) = written(outbox)
    assert [run.result for run in runs] == [message["Message-ID"]]
    assert queue.jobs == []
    (row,) = queued_rows()
    assert (row.state, row.attempts, row.payload_ct) == ("sent", 1, b"")
    assert row.sent_at is not None


def test_a_message_met_again_once_sent_is_skipped(outbox, queue):
    queue_message()
    (job,) = queue.jobs
    first = queue.run_one(job)

    again = queue.run_one(Job(job.name, job.args, {}))  # the broker hands it out again

    assert first.result.startswith("<") and again.result == "sent"
    assert len(written(outbox)) == 1


def test_a_send_that_could_not_be_recorded_goes_out_again_under_the_same_message_id(
    outbox, queue, monkeypatch, failing_commits
):
    """Past every pause the outcome is still not written: the task runs again and sends again,
    with the Message-ID of the first try, so the receiving side sees the repeat as one."""
    monkeypatch.setattr(outbound, "RECORD_PAUSES", (0, 0))
    queue_message()
    failing_commits(2, when=lambda: bool(written(outbox)))

    runs = queue.run("mail.send_queued")

    assert [run.retried for run in runs] == [True, False]
    first, second = written(outbox)
    (row,) = queued_rows()
    assert first["Message-ID"] == second["Message-ID"] == mail.message_id_of(row)
    assert (row.state, row.attempts) == ("sent", 2)


def test_the_message_id_is_derived_from_the_row(app, outbox, queue):
    queue_message()
    queue_message()
    first, second = queued_rows()

    assert mail.message_id_of(first) != mail.message_id_of(second)
    assert mail.message_id_of(first).endswith("@example.org>")
    assert str(first.id) not in mail.message_id_of(first).split("@")[0].split("-")
    queue.run("mail.send_queued")
    assert [m["Message-ID"] for m in written(outbox)] == [
        mail.message_id_of(first),
        mail.message_id_of(second),
    ]


def test_a_sent_message_keeps_no_payload_and_its_row_goes_a_day_later(outbox, queue):
    queue_message()
    queue.run("mail.send_queued")
    (row,) = queued_rows()
    assert row.payload_ct == b""
    db.session.execute(
        update(mail.QueuedMail).values(sent_at=row.sent_at - mail.SENT_KEPT - dt.timedelta(1))
    )
    db.session.commit()

    queue_message()
    queue.run("mail.send_queued")

    assert [r.state for r in queued_rows()] == ["sent"]
    assert len(written(outbox)) == 2


def test_a_subject_with_a_line_break_still_goes_out_from_the_queue(outbox, queue):
    queue_message(subject="Sub-processor change notice 3: Evil\r\nBcc: x@example.net Inc.")
    (run,) = queue.run("mail.send_queued")

    (message,) = written(outbox)
    assert message["Subject"] == "Sub-processor change notice 3: Evil  Bcc: x@example.net Inc."
    assert message["Bcc"] is None
    assert queued_rows()[0].state == "sent" and run.result == message["Message-ID"]


@pytest.mark.integration
def test_a_refused_recipient_fails_for_good_and_the_message_is_kept_and_listed(
    app, smtp_server, smtp_config, queue, caplog
):
    handler = Collector(refuse="gone@example.com")
    smtp_config(f"smtp://127.0.0.1:{smtp_server(handler)}")
    caplog.set_level("INFO", logger="privacy.mail")
    queue_message("gone@example.com", "Art. 28 notice")

    (run,) = queue.run("mail.send_queued")

    assert run.result == "failed" and queue.jobs == []
    (row,) = queued_rows()
    assert (row.state, row.attempts, row.last_error) == ("failed", 1, "SMTPRecipientsRefused 550")
    assert mail.load_payload(row)["subject"] == "Art. 28 notice"  # kept, not dropped
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("privacy.mail"))
    assert f"queued mail {row.id} failed for good" in ours
    assert "gone@" not in ours and "Art. 28" not in ours
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["mail", "failed"])
    assert listed.exit_code == 0
    assert json.loads(listed.output) == {
        "id": row.id,
        "queued_at": row.created_at.isoformat(),
        "attempts": 1,
        "error": "SMTPRecipientsRefused 550",
    }

    handler.refuse = None  # the address was fixed on the receiving side
    retried = runner.invoke(args=["mail", "retry", str(row.id)])
    assert retried.exit_code == 0, retried.output
    queue.run("mail.send_queued")

    (envelope,) = handler.envelopes
    assert parse(envelope.original_content)["Message-ID"] == mail.message_id_of(row)
    assert queued_rows()[0].state == "sent"
    assert runner.invoke(args=["mail", "failed"]).output == ""
    assert runner.invoke(args=["mail", "retry", str(row.id)]).exit_code != 0


class TryLater(Collector):
    """Answers 451 (a temporary failure) to the first `busy` recipients it is given."""

    def __init__(self, busy: int) -> None:
        super().__init__()
        self.busy = busy

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        self.rcpt_attempts += 1
        if self.rcpt_attempts <= self.busy:
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.mark.integration
def test_a_temporary_refusal_is_tried_again_under_the_same_message_id(
    smtp_server, smtp_config, queue
):
    handler = TryLater(busy=1)
    smtp_config(f"smtp://127.0.0.1:{smtp_server(handler)}")
    queue_message()

    first, second = queue.run("mail.send_queued")

    assert first.retried and second.job.countdown == mail.RETRY_BASE_SECONDS
    (envelope,) = handler.envelopes
    (row,) = queued_rows()
    assert parse(envelope.original_content)["Message-ID"] == second.result
    assert second.result == mail.message_id_of(row)
    assert (row.state, row.attempts, row.last_error) == ("sent", 2, None)


def test_an_unreachable_server_is_tried_with_growing_pauses_then_given_up(
    app, smtp_config, queue, caplog
):
    smtp_config(f"smtp://127.0.0.1:{free_port()}")  # nothing listens there
    queue_message()

    runs = queue.run("mail.send_queued")

    assert [run.job.countdown for run in runs] == [None, 15, 30, 60, 120, 240, 480, 600]
    assert [run.retried for run in runs] == [True] * 7 + [False]
    (row,) = queued_rows()
    assert (row.state, row.attempts) == ("failed", mail.MAX_ATTEMPTS)
    assert row.last_error == "ConnectionRefusedError"


def test_a_payload_that_cannot_be_read_fails_for_good_is_kept_and_can_be_discarded(
    app, outbox, queue
):
    queue_message()
    db.session.execute(update(mail.QueuedMail).values(payload_ct=b"not a ciphertext"))
    db.session.commit()

    (run,) = queue.run("mail.send_queued")

    assert run.result == "failed" and written(outbox) == []
    (row,) = queued_rows()
    assert (row.state, row.attempts, row.payload_ct) == ("failed", 1, b"not a ciphertext")
    runner = app.test_cli_runner()
    assert runner.invoke(args=["mail", "discard", str(row.id)]).exit_code == 0
    assert queued_rows() == []
    assert runner.invoke(args=["mail", "discard", str(row.id)]).exit_code != 0


# --- limits on mail people's actions send -----------------------------------------------


def test_mail_limits_count_per_address_and_per_account_and_store_no_address(
    app, tenant, monkeypatch
):
    monkeypatch.setitem(app.config, "MAIL_RECIPIENT_RATE_LIMIT", "5 per hour")
    monkeypatch.setitem(app.config, "MAIL_ACCOUNT_RATE_LIMIT", "7 per hour")
    for address in ("Zoe@Example.com", "zoe@example.com", "ZOE@example.com", "zoe@example.com"):
        mail.limit("invitation", recipient=address, account=tenant.account)
    mail.limit("invitation", recipient="zoe@example.com", account=tenant.account)
    with pytest.raises(TooManyRequests) as refused:
        mail.limit("invitation", recipient="zoe@example.com", account=tenant.account)
    assert refused.value.code == 429
    assert 3500 < int(refused.value.data["headers"]["Retry-After"]) <= 3600
    assert "this address" in refused.value.data["message"]
    # Another kind of mail to the same address counts on its own.
    mail.limit("dsr_verification", recipient="zoe@example.com")

    mail.limit("invitation", recipient="ann@example.com", account=tenant.account)
    mail.limit("invitation", recipient="ann@example.com", account=tenant.account)
    with pytest.raises(TooManyRequests, match="sent from this account"):
        mail.limit("invitation", recipient="bob@example.com", account=tenant.account)

    stored = repr(vars(limiter.storage)).lower()
    assert "zoe" not in stored and "example.com" not in stored
