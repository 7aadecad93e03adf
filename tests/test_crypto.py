"""Key ring and blind index primitives."""

from __future__ import annotations

import base64

import pytest
from cryptography.exceptions import InvalidTag

from privacy.crypto import BlindIndex
from privacy.crypto import KeyRing
from privacy.crypto import KeyRingError
from privacy.crypto import new_key_entry

KEY_A = "a1:" + base64.b64encode(b"A" * 32).decode()
KEY_B = "b2:" + base64.b64encode(b"B" * 32).decode()


def test_last_key_encrypts_and_any_key_decrypts():
    old = KeyRing.parse(KEY_A)
    blob = old.encrypt("Zoë", b"aad")
    ring = KeyRing.parse(f"{KEY_A},{KEY_B}")
    assert ring.current_id == "b2"
    assert ring.decrypt(blob, "a1", b"aad") == "Zoë"
    assert ring.decrypt(ring.encrypt("x", b"aad"), "b2", b"aad") == "x"


def test_ciphertext_is_bound_to_its_row_and_field():
    ring = KeyRing.parse(KEY_A)
    blob = ring.encrypt("secret", b"subjects:1:name")
    with pytest.raises(InvalidTag):
        ring.decrypt(blob, "a1", b"subjects:2:name")


def test_same_plaintext_encrypts_differently_each_time():
    ring = KeyRing.parse(KEY_A)
    assert ring.encrypt("same", b"x") != ring.encrypt("same", b"x")


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "nokey",
        "a1:notbase64!!",
        "a1:" + base64.b64encode(b"short").decode(),
        f"{KEY_A},{KEY_A}",
    ],
)
def test_malformed_key_rings_are_refused(spec):
    with pytest.raises(KeyRingError):
        KeyRing.parse(spec)


def test_removed_key_is_reported_not_crashing():
    ring = KeyRing.parse(KEY_B)
    with pytest.raises(KeyRingError):
        ring.decrypt(b"\0" * 40, "a1", b"")


def test_blind_index_is_keyed_and_scoped():
    index = BlindIndex(b"k" * 32)
    other_key = BlindIndex(b"j" * 32)
    assert index("acct-1", "a@example.org") == index("acct-1", "a@example.org")
    assert index("acct-1", "a@example.org") != index("acct-2", "a@example.org")
    assert index("acct-1", "a@example.org") != other_key("acct-1", "a@example.org")


def test_new_key_entry_parses():
    assert KeyRing.parse(new_key_entry("k9")).current_id == "k9"
