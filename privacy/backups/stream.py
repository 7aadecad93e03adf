"""The backup file format: gzip-compressed, then encrypted in authenticated frames, streamed.

    header: MAGIC, key id, the per-backup data key wrapped (AES-GCM) by that backup key,
            and a random nonce prefix
    frames: length (4 bytes) + AES-256-GCM(data key, nonce = prefix || counter || last)
            of up to FRAME bytes of compressed data; the last frame is flagged, so a
            truncated file fails to decrypt instead of restoring a partial database

Everything runs in fixed-size pieces: memory stays flat whatever the database size.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"PRVBAK1\n"
FRAME = 1024 * 1024
READ = 256 * 1024
PLAIN = 4 * 1024 * 1024  # largest piece decrypt() yields
NONCE_PREFIX = 7


class BackupCorrupt(ValueError):
    """The file is not a backup, was cut short, altered, or needs another key."""


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    return prefix + struct.pack(">I", counter) + (b"\x01" if last else b"\x00")


def encrypt(
    chunks: Iterable[bytes], *, key_id: str, wrapping_key: bytes, level: int = 3
) -> Iterator[bytes]:
    """Compress and encrypt a stream of plaintext chunks into the backup format."""
    data_key = AESGCM.generate_key(bit_length=256)
    wrap_nonce = os.urandom(12)
    wrapped = wrap_nonce + AESGCM(wrapping_key).encrypt(
        wrap_nonce, data_key, MAGIC + key_id.encode()
    )
    prefix = os.urandom(NONCE_PREFIX)
    ident = key_id.encode()
    yield (
        MAGIC
        + struct.pack(">H", len(ident))
        + ident
        + struct.pack(">H", len(wrapped))
        + wrapped
        + prefix
    )
    cipher = AESGCM(data_key)
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    pending = bytearray()
    counter = 0

    def frame(data: bytes, last: bool) -> bytes:
        sealed = cipher.encrypt(_nonce(prefix, counter, last), data, None)
        return struct.pack(">I", len(sealed)) + sealed

    for chunk in chunks:
        pending += compressor.compress(chunk)
        while len(pending) >= FRAME:
            yield frame(bytes(pending[:FRAME]), False)
            del pending[:FRAME]
            counter += 1
    pending += compressor.flush()
    while len(pending) > FRAME:
        yield frame(bytes(pending[:FRAME]), False)
        del pending[:FRAME]
        counter += 1
    yield frame(bytes(pending), True)


def _read_exact(stream, size: int) -> bytes:
    out = bytearray()
    while len(out) < size:
        piece = stream.read(size - len(out))
        if not piece:
            break
        out += piece
    return bytes(out)


def key_id_of(stream) -> tuple[str, bytes]:
    """(key id, the header bytes read) of a backup stream."""
    head = _read_exact(stream, len(MAGIC) + 2)
    if len(head) < len(MAGIC) + 2 or not head.startswith(MAGIC):
        raise BackupCorrupt("This is not a backup file of this service.")
    (size,) = struct.unpack(">H", head[len(MAGIC) :])
    ident = _read_exact(stream, size)
    return ident.decode(), head + ident


def decrypt(stream, keys: dict[str, bytes]) -> Iterator[bytes]:
    """Decrypt and decompress a backup stream; BackupCorrupt for anything amiss."""
    key_id, _ = key_id_of(stream)
    if key_id not in keys:
        raise BackupCorrupt(f"The backup was made with key {key_id!r}, which is not configured.")
    (size,) = struct.unpack(">H", _read_exact(stream, 2))
    wrapped = _read_exact(stream, size)
    try:
        data_key = AESGCM(keys[key_id]).decrypt(wrapped[:12], wrapped[12:], MAGIC + key_id.encode())
    except InvalidTag:
        raise BackupCorrupt(f"Key {key_id!r} does not open this backup (wrong key).") from None
    prefix = _read_exact(stream, NONCE_PREFIX)
    cipher = AESGCM(data_key)
    decompressor = zlib.decompressobj(31)
    counter = 0
    while True:
        length = _read_exact(stream, 4)
        if len(length) < 4:
            raise BackupCorrupt("The backup ends early (truncated).")
        (size,) = struct.unpack(">I", length)
        sealed = _read_exact(stream, size)
        for last in (False, True):
            try:
                data = cipher.decrypt(_nonce(prefix, counter, last), sealed, None)
                break
            except InvalidTag:
                data = None
        if data is None:
            raise BackupCorrupt("The backup was altered (a frame fails authentication).")
        counter += 1
        # Bounded pieces: a frame of very compressible data would inflate to hundreds of MB.
        while True:
            out = decompressor.decompress(data, PLAIN)
            if out:
                yield out
            data = decompressor.unconsumed_tail
            if not data and len(out) < PLAIN:
                break
        if last:
            rest = decompressor.flush()
            if rest:
                yield rest
            if stream.read(1):
                raise BackupCorrupt("The backup has data after its last frame.")
            return


class IterReader(io.RawIOBase):
    """A readable file object over an iterator of bytes, counting and hashing what it gives.

    `read(n)` returns n bytes unless the stream ends first: boto3 takes a short read of a
    non-seekable stream for its end, and would then read the rest whole (into memory) or
    upload parts below S3's 5 MB minimum.
    """

    def __init__(self, chunks: Iterable[bytes], on_read: Callable[[bytes], None] | None = None):
        self._chunks = iter(chunks)
        self._buffer = memoryview(b"")
        self._on_read = on_read

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        while not self._buffer:
            try:
                self._buffer = memoryview(next(self._chunks))
            except StopIteration:
                return 0
        size = min(len(target), len(self._buffer))
        piece, self._buffer = self._buffer[:size], self._buffer[size:]
        target[:size] = piece
        if self._on_read:
            self._on_read(piece)
        return size

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        out = bytearray(size)
        view = memoryview(out)
        done = 0
        while done < size:
            got = self.readinto(view[done:])
            if not got:
                break
            done += got
        view.release()
        del out[done:]
        return bytes(out)


def file_chunks(stream, size: int = READ) -> Iterator[bytes]:
    while chunk := stream.read(size):
        yield chunk
