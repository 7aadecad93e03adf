"""What replaces a finding: redaction, masking, keyed pseudonyms, reversible tokens.

The replacing itself follows presidio-anonymizer's rules (privacy.scrubber.anonymizer); this
module does not import Presidio. Pseudonyms are an HMAC of
the value under a per-account key, so one value always gives one token and logs stay
joinable without the value. Reversible tokens are AES-SIV (deterministic authenticated
encryption) under a second per-account key: only a holder of that key can turn one back.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

MODES = ("redact", "mask", "pseudonym", "token")
TOKEN = re.compile(r"<(?P<entity>[A-Z_]{2,40})~(?P<blob>[A-Za-z0-9_-]{16,700})>")


class OperatorError(ValueError):
    """A mode needs a key it was not given, or a token does not decrypt."""


@dataclass(frozen=True)
class Operator:
    """How findings are replaced. `key` is 32 bytes for pseudonym, 64 bytes for token."""

    mode: str = "redact"
    key: bytes | None = None
    mask_char: str = "*"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise OperatorError(f"mode must be one of {', '.join(MODES)}")
        if self.mode == "pseudonym" and (not self.key or len(self.key) < 32):
            raise OperatorError("pseudonym mode needs a key of at least 32 bytes")
        if self.mode == "token" and (not self.key or len(self.key) != 64):
            raise OperatorError("token mode needs a 64-byte AES-SIV key")

    def replacement(self, entity: str, value: str) -> str:
        if self.mode == "redact":
            return f"[{entity}]"
        if self.mode == "mask":
            keep = min(4, len(value) // 4)
            return self.mask_char * (len(value) - keep) + (value[-keep:] if keep else "")
        if self.mode == "pseudonym":
            message = f"{entity}\x00{value}".encode("utf-8", "surrogatepass")
            digest = hmac.new(self.key, message, hashlib.sha256)
            return f"<{entity}:{digest.hexdigest()[:12]}>"
        plain = value.encode("utf-8", "surrogatepass")
        blob = AESSIV(self.key).encrypt(plain, [entity.encode()])
        return f"<{entity}~{base64.urlsafe_b64encode(blob).decode().rstrip('=')}>"


REDACT = Operator("redact")


def reverse(text: str, key: bytes) -> tuple[str, int]:
    """Decrypt every reversible token in `text`; returns (text, tokens reversed).

    Raises OperatorError if a token does not decrypt under `key` (wrong key or tampered).
    """
    siv = AESSIV(key)
    count = 0

    def restore(match: re.Match) -> str:
        nonlocal count
        blob = match.group("blob")
        try:
            raw = base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))
            plain = siv.decrypt(raw, [match.group("entity").encode()])
            value = plain.decode("utf-8", "surrogatepass")
        except (InvalidTag, binascii.Error, ValueError):
            raise OperatorError("a token does not decrypt with this account's key") from None
        count += 1
        return value

    return TOKEN.sub(restore, text), count
