"""Normalization and validation shared by schemas and bulk imports: e-mails and names."""

from __future__ import annotations

import unicodedata

from email_validator import EmailNotValidError
from email_validator import validate_email

MAX_EMAIL = 254
MAX_NAME = 200


def normalize_email(value: str) -> str:
    """Syntax-check an address (no DNS) and return its normalized, lower-cased form.

    Raises ValueError with a message that never repeats the input.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError("E-mail is required.")
    if len(value) > MAX_EMAIL:
        raise ValueError(f"E-mail is longer than {MAX_EMAIL} characters.")
    try:
        result = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError:
        raise ValueError("Not a valid e-mail address.") from None
    # Providers treat local parts case-insensitively in practice; one person, one index value.
    return result.normalized.lower()


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
