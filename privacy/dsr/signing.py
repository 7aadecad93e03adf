"""The processor's OpenDSR signing key and certificate.

Responses and callbacks carry `X-OpenDSR-Signature`: the base64 RSA PKCS#1 v1.5 signature
(SHA-256) of the raw body, made with the key of the certificate published at
`/opendsr/v1/certificate`, and `X-OpenDSR-Processor-Domain`: the domain that certificate
names. The legacy `X-OpenGDPR-*` names carry the same values.

Production names a key and a certificate from a CA (PRIVACY_OPENDSR_KEY_FILE,
PRIVACY_OPENDSR_CERT_FILE); a key that does not belong to the certificate is refused at
load. The embedded default generates a key and a self-signed certificate for
PRIVACY_BASE_URL's host into instance/opendsr/ on first use (once, under a file lock: the
web and worker processes may all start at the same moment).
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import logging
import os
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from flask import current_app

logger = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-OpenDSR-Signature"
DOMAIN_HEADER = "X-OpenDSR-Processor-Domain"
# OpenGDPR, the spec's former name: controllers written against it read these.
LEGACY_SIGNATURE_HEADER = "X-OpenGDPR-Signature"
LEGACY_DOMAIN_HEADER = "X-OpenGDPR-Processor-Domain"


class SigningKeyError(ValueError):
    """The configured key or certificate cannot be used; the message says why."""


@dataclass(frozen=True)
class Signer:
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @property
    def domain(self) -> str:
        try:
            names = self.certificate.extensions.get_extension_for_class(
                x509.SubjectAlternativeName
            ).value.get_values_for_type(x509.DNSName)
        except x509.ExtensionNotFound:
            names = []
        if names:
            return names[0]
        return self.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def sign(self, body: bytes) -> str:
        signature = self.key.sign(body, padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(signature).decode()

    def headers(self, body: bytes) -> dict[str, str]:
        signature = self.sign(body)
        return {
            SIGNATURE_HEADER: signature,
            DOMAIN_HEADER: self.domain,
            LEGACY_SIGNATURE_HEADER: signature,
            LEGACY_DOMAIN_HEADER: self.domain,
        }


def verify(certificate_pem: bytes, body: bytes, signature: str | None) -> bool:
    """Check a signature the way a controller does (tests, and docs/opendsr.md's example):
    False for a missing, malformed or wrong signature; a certificate that is not PEM, or
    whose key is not RSA, raises ValueError."""
    certificate = x509.load_pem_x509_certificate(certificate_pem)
    public_key = certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise ValueError("OpenDSR certificates carry RSA keys")
    try:
        raw = base64.b64decode(signature or "", validate=True)
        public_key.verify(raw, body, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def get() -> Signer:
    """The app's signer, loaded (or generated, with embedded defaults) once."""
    app = current_app._get_current_object()
    signer = app.extensions.get("opendsr_signer")
    if signer is None:
        signer = _load(app.config)
        app.extensions["opendsr_signer"] = signer
    return signer


def _load(config) -> Signer:
    """The configured pair, or the embedded one (generated when missing). Raises
    SigningKeyError when the key is not RSA or does not belong to the certificate."""
    key_file, cert_file = config.get("OPENDSR_KEY_FILE"), config.get("OPENDSR_CERT_FILE")
    if not (key_file and cert_file):
        folder = Path(config["INSTANCE_PATH"]) / "opendsr"
        key_file, cert_file = folder / "processor.key", folder / "processor.crt"
        if not key_file.exists():
            _generate(folder, urlsplit(config.get("BASE_URL") or "").hostname or "localhost")
    try:
        key = serialization.load_pem_private_key(Path(key_file).read_bytes(), password=None)
        certificate = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
    except (TypeError, ValueError) as exc:  # never repeat the file's content
        raise SigningKeyError(
            f"PRIVACY_OPENDSR_KEY_FILE / PRIVACY_OPENDSR_CERT_FILE cannot be read as an "
            f"unencrypted PEM key and certificate ({type(exc).__name__})"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SigningKeyError("PRIVACY_OPENDSR_KEY_FILE must hold an RSA private key")
    if key.public_key().public_numbers() != certificate.public_key().public_numbers():
        # Every signature would fail verification against the published certificate.
        raise SigningKeyError(
            "PRIVACY_OPENDSR_KEY_FILE does not belong to PRIVACY_OPENDSR_CERT_FILE"
        )
    now = datetime.now(UTC)
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        logger.warning(
            "the OpenDSR certificate is not valid now (valid %s to %s): controllers will "
            "reject its signatures",
            certificate.not_valid_before_utc.isoformat(),
            certificate.not_valid_after_utc.isoformat(),
        )
    return Signer(key, certificate)


def _generate(folder: Path, domain: str) -> None:
    """Write a key and a self-signed certificate, once: under a lock, certificate first and
    the key renamed into place last, so a key that exists always has its certificate."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "processor.key").exists():
            _write_pair(folder, domain)


def _write_pair(folder: Path, domain: str) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (folder / "processor.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    partial = folder / f"processor.key.{os.getpid()}"
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, folder / "processor.key")
