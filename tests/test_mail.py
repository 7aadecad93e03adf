"""Outgoing mail: the outbox folder, real SMTP servers (aiosmtpd) and the Celery task."""

from __future__ import annotations

import datetime as dt
import ipaddress
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

from privacy import mail

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


def test_header_injection_is_refused_and_nothing_is_written(outbox):
    with pytest.raises(ValueError):
        mail.send("a@example.com", "Hello\r\nBcc: victim@example.com", "body")

    assert not outbox.exists() or not list(outbox.iterdir())


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

    assert task.name == mail.send_task.name == "mail.send"
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
