"""Normalization and validation shared by schemas and bulk imports: e-mails, names, labels
and JSON documents."""

from __future__ import annotations

import json
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
# No input of ours nests deeper than a few levels; recursive code (serializers, the JSON
# columns, the audit log) must never meet a document deep enough to exhaust the stack.
MAX_JSON_DEPTH = 32
# Characters a one-line label must not hold: C0 and C1 controls (CR, LF, NUL, ESC...), the
# Unicode line and paragraph separators, and lone surrogates (not encodable as UTF-8).
_NOT_IN_LABELS = frozenset({"Cc", "Zl", "Zp", "Cs"})
_SURROGATE = re.compile("[\ud800-\udfff]")

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


def clean_label(value: str, *, what: str = "Name", max_length: int = MAX_NAME) -> str:
    """Trim and NFC-normalize a one-line label: an account's, a company's or a document's
    name, anything that may end up in a mail subject, a header or a log line.

    Raises ValueError, with `what` as the subject and never the input, if the value is not
    text, is empty, is longer than `max_length`, or holds a control character (CR, LF, NUL,
    C1...), a line or paragraph separator, or a lone surrogate.
    """
    if not isinstance(value, str):
        raise ValueError(f"{what} must be text.")
    if _SURROGATE.search(value):
        raise ValueError(f"{what} must be text without lone surrogates.")
    value = unicodedata.normalize("NFC", value).strip()
    if not value:
        raise ValueError(f"{what} must not be empty.")
    if len(value) > max_length:
        raise ValueError(f"{what} is longer than {max_length} characters.")
    if any(unicodedata.category(ch) in _NOT_IN_LABELS for ch in value):
        raise ValueError(f"{what} must not contain control characters or line breaks.")
    return value


def clean_name(value: str) -> str:
    """A person's name: clean_label's rules (trimmed, NFC, one line, at most MAX_NAME)."""
    return clean_label(value, what="Name", max_length=MAX_NAME)


def clean_text(value: str, *, what: str, max_length: int) -> str:
    """Trim free text that may span lines (an address, a purpose, a reason).

    Raises ValueError, naming `what` and never the input, if the value is not text, is
    longer than `max_length`, or holds a control character other than tab and line breaks
    (NUL cannot be stored in a PostgreSQL text column) or a lone surrogate. Empty text is
    returned as ""; whether that is allowed is the caller's rule.
    """
    if not isinstance(value, str):
        raise ValueError(f"{what} must be text.")
    if _SURROGATE.search(value):
        raise ValueError(f"{what} must be text without lone surrogates.")
    value = unicodedata.normalize("NFC", value).strip()
    if len(value) > max_length:
        raise ValueError(f"{what} is longer than {max_length:,} characters.")
    if any(unicodedata.category(ch) == "Cc" and ch not in "\t\n\r" for ch in value):
        raise ValueError(f"{what} must not contain control characters.")
    return value


class UnsafeJson(ValueError):
    """Well-formed JSON the service refuses; the message names the reason, not the input."""


def _no_constant(name: str):
    raise UnsafeJson(f"{name} is not a JSON number")


def load_json(raw: bytes | str):
    """Parse a JSON document (bytes must be UTF-8), then refuse what would fail later on:
    nesting deeper than MAX_JSON_DEPTH, lone surrogates (`"\\ud800"`) and NUL characters
    in a string or key, NaN and Infinity, and integers longer than Python converts.

    Raises json.JSONDecodeError for malformed JSON, UnicodeDecodeError for bytes that are not
    UTF-8, and UnsafeJson (a ValueError) for the rest.
    """
    text = raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else raw
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise UnsafeJson(f"it nests deeper than {MAX_JSON_DEPTH} levels") from None
    except (json.JSONDecodeError, UnsafeJson):
        raise
    except ValueError:  # an integer beyond sys.get_int_max_str_digits()
        raise UnsafeJson("it holds a number with too many digits") from None
    check_json(value)
    return value


def check_json(value) -> None:
    """Refuse a parsed JSON value nesting deeper than MAX_JSON_DEPTH or holding a lone
    surrogate or a NUL character, with UnsafeJson. Iterative: deep input cannot exhaust the
    stack here."""
    pending = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if not item.isascii() and _SURROGATE.search(item):
                raise UnsafeJson("it holds a lone surrogate (an unpaired \\ud800-\\udfff escape)")
            if "\x00" in item:
                # PostgreSQL stores no NUL in text, and no text of ours has a use for one.
                raise UnsafeJson("it holds a NUL character (\\u0000)")
        elif isinstance(item, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise UnsafeJson(f"it nests deeper than {MAX_JSON_DEPTH} levels")
            if isinstance(item, dict):
                pending.extend((key, depth) for key in item)
                item = item.values()
            pending.extend((child, depth + 1) for child in item)
