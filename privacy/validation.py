"""Normalization and validation shared by schemas and bulk imports: e-mails and names."""

from __future__ import annotations

import re
import unicodedata

from email_validator import SPECIAL_USE_DOMAIN_NAMES
from email_validator import EmailNotValidError
from email_validator import validate_email

MAX_EMAIL = 254
MAX_NAME = 200
MAX_EXTERNAL_REF = 200
MAX_SOURCE = 100
MAX_SYSTEMS = 100

# The plain ASCII shape almost every real address has: dot-atom local part, LDH labels, an
# alphabetic TLD. Anything else (quoted parts, IDNA, odd lengths) goes to email-validator.
_ASCII_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,64}(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)
_SPECIAL_USE = frozenset(SPECIAL_USE_DOMAIN_NAMES)


def normalize_email(value: str) -> str:
    """Syntax-check an address (no DNS) and return it as given: trimmed, the domain in
    Unicode NFC form, the local part's case kept (it is how the person writes it, and how
    mail to them is addressed). Matching is case-insensitive elsewhere (`email_key`).

    Raises ValueError with a message that never repeats the input.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError("E-mail is required.")
    value = value.strip()
    if len(value) > MAX_EMAIL:
        raise ValueError(f"E-mail is longer than {MAX_EMAIL} characters.")
    if _ASCII_EMAIL.fullmatch(value):
        local, _, domain = value.rpartition("@")
        # Every special-use name is a single label, so the last label decides.
        lowered = domain.lower()
        special = "--" in lowered or lowered.rpartition(".")[2] in _SPECIAL_USE
        if len(local) <= 64 and len(domain) <= 253 and not special:
            return value
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        raise ValueError("Not a valid e-mail address.") from None
    return result.normalized


def email_key(email: str) -> str:
    """The form an address is matched by (blind indexes, hashes, limits): lower-cased whole.

    Providers treat local parts case-insensitively in practice: one person, one key, however
    they type their address.
    """
    return email.lower()


def clean_name(value: str) -> str:
    """Trim and NFC-normalize a person's name; raise ValueError if empty, too long or binary."""
    if not isinstance(value, str):
        raise ValueError("Name must be text.")
    value = unicodedata.normalize("NFC", value).strip()
    if not value:
        raise ValueError("Name must not be empty.")
    if len(value) > MAX_NAME:
        raise ValueError(f"Name is longer than {MAX_NAME} characters.")
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise ValueError("Name must not contain control characters.")
    return value
