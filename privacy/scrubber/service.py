"""The scrubber behind the API: one Scrubber per process, per-account keys, audited reversal."""

from __future__ import annotations

import base64
import threading
from collections.abc import Sequence

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

from privacy.audit import services as audit
from privacy.errors import ValidationFailed
from privacy.scrubber import operators
from privacy.scrubber.engine import Scrubbed
from privacy.scrubber.engine import Scrubber

# purpose -> key length the operator needs (HMAC-SHA256 for pseudonyms, AES-SIV-256 for tokens)
KEY_LENGTHS = {"pseudonym": 32, "token": 64}

_scrubber: Scrubber | None = None
_scrubber_lock = threading.Lock()


class TokenRefused(ValidationFailed):
    description = (
        "A token does not decrypt with this account's key: it was made by another account, "
        "before the index key was rotated, or it was altered."
    )


def get_scrubber() -> Scrubber:
    """The process's Scrubber, built on first use: loading spaCy takes about a second, and
    a Scrubber is thread-safe once built."""
    global _scrubber
    if _scrubber is None:
        with _scrubber_lock:
            if _scrubber is None:
                _scrubber = Scrubber()
    return _scrubber


def account_key(account, purpose: str) -> bytes:
    """The account's key for `purpose` ("pseudonym": 32 bytes, "token": 64 bytes).

    Derived with HKDF-SHA256 from the app's INDEX_KEY and the account's public id, never
    stored. Rotating PRIVACY_INDEX_KEY therefore changes every pseudonym and makes tokens
    made before the rotation irreversible.
    """
    master = base64.b64decode(current_app.config["INDEX_KEY"], validate=True)
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_LENGTHS[purpose],
        salt=None,
        info=f"scrub-{purpose}:{account.public_id}".encode(),
    )
    return hkdf.derive(master)


def operator_for(account, mode: str) -> operators.Operator:
    """The replacement operator for `mode`, keyed to the account where the mode needs a key."""
    if mode in KEY_LENGTHS:
        return operators.Operator(mode, key=account_key(account, mode))
    return operators.Operator(mode)


def scrub_batch(lines: Sequence[str], operator: operators.Operator) -> list[Scrubbed]:
    """Scrubbed lines in input order; NER runs over the batch at once."""
    return get_scrubber().scrub_batch(lines, operator)


def reverse_tokens(account, *, text: str) -> tuple[str, int]:
    """`text` with the account's reversible tokens turned back into their values, and how many.

    Audited in the caller's transaction either way: `scrub.reversed`, or, when a token does
    not decrypt under this account's key, `scrub.reverse_refused` before raising
    TokenRefused (422). The caller commits in both cases, so refusals stay on record.
    """
    try:
        original, count = operators.reverse(text, account_key(account, "token"))
    except operators.OperatorError:
        tokens = sum(1 for _ in operators.TOKEN.finditer(text))
        audit.record(
            account, action="scrub.reverse_refused", object_type="scrub", data={"tokens": tokens}
        )
        raise TokenRefused() from None
    audit.record(account, action="scrub.reversed", object_type="scrub", data={"tokens": count})
    return original, count
