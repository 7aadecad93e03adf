"""Field encryption at rest (AES-256-GCM key ring with key ids) and the keyed blind index."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


class KeyRingError(ValueError):
    """A key ring or index key is malformed, or a ciphertext's key is not in the ring."""


def _decode_key(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KeyRingError(f"{what} is not valid base64") from exc
    if len(raw) != 32:
        raise KeyRingError(f"{what} must be 32 bytes (AES-256), got {len(raw)}")
    return raw


def new_key_entry(key_id: str | None = None) -> str:
    """A fresh `id:base64key` entry to append to PRIVACY_DATA_KEYS."""
    key_id = key_id or "k" + os.urandom(3).hex()
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


@dataclass(frozen=True)
class KeyRing:
    """Ordered AES-256-GCM keys; the last one encrypts, any of them decrypts."""

    keys: dict[str, AESGCM]
    current_id: str

    @classmethod
    def parse(cls, spec: str) -> KeyRing:
        """Parse `id:base64key,id:base64key`; raises KeyRingError on any defect."""
        keys: dict[str, AESGCM] = {}
        current = None
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            key_id, sep, material = part.partition(":")
            key_id = key_id.strip()
            if not sep or not key_id or not key_id.isalnum() or len(key_id) > 32:
                raise KeyRingError("PRIVACY_DATA_KEYS entries look like 'k1:<base64 32 bytes>'")
            if key_id in keys:
                raise KeyRingError(f"PRIVACY_DATA_KEYS names key id {key_id!r} twice")
            keys[key_id] = AESGCM(_decode_key(material, f"data key {key_id!r}"))
            current = key_id
        if current is None:
            raise KeyRingError("PRIVACY_DATA_KEYS holds no key")
        return cls(keys=keys, current_id=current)

    def encrypt(self, plaintext: str, aad: bytes) -> bytes:
        """Encrypt under the current key: nonce || ciphertext+tag (key id stored beside it)."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self.keys[self.current_id].encrypt(nonce, plaintext.encode(), aad)

    def encrypt_bytes(self, data: bytes, aad: bytes) -> bytes:
        """Like encrypt(), for bytes (documents): nonce || ciphertext+tag."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self.keys[self.current_id].encrypt(nonce, data, aad)

    def decrypt_bytes(self, blob: bytes, key_id: str, aad: bytes) -> bytes:
        try:
            key = self.keys[key_id]
        except KeyError as exc:
            raise KeyRingError(f"key id {key_id!r} is not in PRIVACY_DATA_KEYS") from exc
        blob = bytes(blob)
        return key.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)

    def decrypt(self, blob: bytes, key_id: str, aad: bytes) -> str:
        """Decrypt with the named key; raises KeyRingError if the key is gone from the ring."""
        try:
            key = self.keys[key_id]
        except KeyError as exc:
            raise KeyRingError(f"key id {key_id!r} is not in PRIVACY_DATA_KEYS") from exc
        blob = bytes(blob)
        return key.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad).decode()


@dataclass(frozen=True)
class BlindIndex:
    """Keyed HMAC-SHA256 over a normalized value, scoped to one account.

    Scoping by account means the same e-mail in two accounts gives unrelated index
    values, so the index cannot link a person across tenants.
    """

    key: bytes

    @classmethod
    def parse(cls, text: str) -> BlindIndex:
        return cls(_decode_key(text, "PRIVACY_INDEX_KEY"))

    def __call__(self, scope: str, value: str) -> str:
        message = f"{scope}\x00{value}".encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()


def token_hash(token: str) -> str:
    """SHA-256 of a high-entropy secret token (API tokens, links): enough, no slow KDF needed."""
    return hashlib.sha256(token.encode()).hexdigest()
