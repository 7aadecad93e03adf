"""A decoded view of a log line (URL percent-encoding, '+' spaces, JSON \\u escapes) that maps
every decoded character back to the raw characters it came from."""

from __future__ import annotations

import codecs
import re

from privacy.scrubber import prefilter

_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}|\\u[0-9A-Fa-f]{4}|(?<=[^\W_])\+(?=[^\W_]|%[0-9A-Fa-f]{2})")


# Its gate (privacy.scrubber.prefilter): _ESCAPE in ASCII text.
GATES = {
    prefilter.ESCAPE: r"%[0-9A-Fa-f]{2}|\\u[0-9A-Fa-f]{4}"
    r"|[A-Za-z0-9]\+(?:[A-Za-z0-9]|%[0-9A-Fa-f]{2})"
}


def needs_decoding(line: str) -> bool:
    return ("%" in line or "\\u" in line or "+" in line) and _ESCAPE.search(line) is not None


def decode(line: str) -> tuple[str, list[int]]:
    """(decoded text, starts) where starts[i] is the raw offset of decoded char i, and
    starts[len(text)] == len(line). A finding (s, e) in the view is (starts[s], starts[e])."""
    out: list[str] = []
    starts: list[int] = []
    pos = 0
    pending = bytearray()
    pending_at: list[int] = []
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def flush_bytes() -> None:
        # Feed byte by byte: a character is emitted when its last byte arrives and is mapped
        # to the first byte of its sequence.
        first = None
        for at, byte in zip(pending_at, pending, strict=True):
            first = at if first is None else first
            text = decoder.decode(bytes([byte]))
            for ch in text:
                out.append(ch)
                starts.append(first)
            if text:
                first = None
        tail = decoder.decode(b"", final=True)
        for ch in tail:
            out.append(ch)
            starts.append(first if first is not None else pos)
        pending.clear()
        pending_at.clear()

    for match in _ESCAPE.finditer(line):
        if match.start() > pos or not match.group().startswith("%"):
            if pending:
                flush_bytes()
        for i in range(pos, match.start()):
            out.append(line[i])
            starts.append(i)
        token = match.group()
        if token.startswith("%"):
            pending.append(int(token[1:], 16))
            pending_at.append(match.start())
        elif token == "+":  # noqa: S105 - an encoded space, not a secret
            out.append(" ")
            starts.append(match.start())
        else:
            out.append(chr(int(token[2:], 16)))
            starts.append(match.start())
        pos = match.end()
    if pending:
        flush_bytes()
    for i in range(pos, len(line)):
        out.append(line[i])
        starts.append(i)
    starts.append(len(line))
    return "".join(out), starts
