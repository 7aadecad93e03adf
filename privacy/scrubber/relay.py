"""Forward scrubbed lines to a syslog receiver: the far end of POST /api/v1/scrub/relay.

Log shippers whose HTTP output ignores the answer (syslog-ng's `http()` destination) post
their lines to the relay endpoint; the service scrubs them and sends the result to the one
receiver the operator configured with PRIVACY_SCRUB_RELAY_URL, usually a second source of
the same syslog daemon, which then routes the clean lines as it would any other.

`tcp://host:port` sends newline-framed lines (RFC 6587 non-transparent framing) over one
connection per batch; `udp://host:port` sends one datagram per line. The receiver is fixed
by the operator, never by a request, so the endpoint cannot be pointed anywhere else.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

SCHEMES = ("tcp", "udp")
TIMEOUT_SECONDS = 5.0
# A UDP syslog datagram larger than this is likely to be dropped on the way (RFC 5426 says
# receivers should take 2048 octets at least; most take 64 KiB, less the headers).
MAX_DATAGRAM_BYTES = 65_000


class RelayUnavailable(RuntimeError):
    """The receiver could not be reached or did not take every line."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> Target:
        """`tcp://host:port` or `udp://host:port`; ValueError with the reason otherwise."""
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES:
            raise ValueError(f"the scheme must be tcp:// or udp://, got {parts.scheme!r}")
        try:
            port = parts.port
        except ValueError:
            port = None
        if not parts.hostname or not port:
            raise ValueError("give a host and a port, e.g. tcp://127.0.0.1:5514")
        if parts.path not in ("", "/") or parts.query or parts.username:
            raise ValueError("only scheme, host and port are allowed")
        return cls(parts.scheme, parts.hostname, port)

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def send(self, lines: Sequence[str]) -> None:
        """Deliver every line or raise RelayUnavailable; a partial TCP send is not success."""
        if not lines:
            return
        # A line's own newlines would split it in two at the receiver.
        payloads = [line.replace("\r", " ").replace("\n", " ").encode() for line in lines]
        try:
            if self.scheme == "tcp":
                with socket.create_connection((self.host, self.port), TIMEOUT_SECONDS) as conn:
                    conn.sendall(b"".join(p + b"\n" for p in payloads))
                    conn.shutdown(socket.SHUT_WR)
            else:
                family, kind, proto, _, address = socket.getaddrinfo(
                    self.host, self.port, type=socket.SOCK_DGRAM
                )[0]
                with socket.socket(family, kind, proto) as conn:
                    conn.settimeout(TIMEOUT_SECONDS)
                    for payload in payloads:
                        conn.sendto(_clip(payload), address)
        except OSError as exc:
            raise RelayUnavailable(f"{self} cannot be reached ({type(exc).__name__})") from exc


def _clip(payload: bytes) -> bytes:
    """At most MAX_DATAGRAM_BYTES, cut at a character boundary."""
    if len(payload) <= MAX_DATAGRAM_BYTES:
        return payload
    return payload[:MAX_DATAGRAM_BYTES].decode(errors="ignore").encode()
