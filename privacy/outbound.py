"""Deliveries to customers' endpoints (OpenDSR status callbacks, sub-processor webhooks):
the hardened HTTP client, and the one way a delivery is tried, counted and recorded.

A delivery never follows a redirect (a 3xx counts as a failure), never reads the receiver's
answer beyond its status code, and never uses proxy variables or .netrc credentials of the
worker's environment. In production a URL must be https and every address its host resolves
to must be public: the check runs on the addresses the socket then connects to, so a DNS
answer that changes between the check and the connection (rebinding) gains nothing.

Each try is counted in the delivery's own row before its POST goes out, and its outcome is
recorded after, in transactions of their own: a database that is busy (SQLite's write lock)
delays a try but never uses one up or sends one twice, and the last try always ends in a
recorded final state. Celery's retry count plays no part.

Every try of one delivery carries the same `Idempotency-Key` header (derived from the
delivery's row), and a retried OpenDSR callback the same signed body: the one case where a
try goes out again without being counted as a new one (its POST went out but its outcome
could not be written, even after RECORD_PAUSES, so the task runs again) is a repeat the
receiver can recognise and drop.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from urllib.parse import urlsplit

import requests
from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from flask import current_app
from requests.adapters import HTTPAdapter
from sqlalchemy.exc import OperationalError
from urllib3.connection import HTTPConnection
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.connectionpool import HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError
from urllib3.exceptions import NameResolutionError
from urllib3.exceptions import NewConnectionError
from urllib3.util.connection import create_connection

from privacy.database import begin_write
from privacy.extensions import db

logger = logging.getLogger(__name__)
TIMEOUT_SECONDS = (5, 10)  # connect, read
# The first try and eight retries after 2, 4, ... 256 s: about eight and a half minutes.
MAX_ATTEMPTS = 9
# IPv6 addresses that carry an IPv4 address in their last 32 bits (besides IPv4-mapped
# ::ffff:0:0/96): IPv4-translated (SIIT, RFC 2765) and NAT64's well-known prefix (RFC 6052).
# The carried address must be public too.
LAST_32_BITS_IPV4 = (
    ipaddress.ip_network("::ffff:0:0:0/96"),
    ipaddress.ip_network("64:ff9b::/96"),
)
# Never public, whatever they carry: IPv4-compatible addresses (::/96, deprecated by RFC
# 4291, ::1 and :: included) and local-use NAT64 (64:ff9b:1::/48, RFC 8215), where the IPv4
# address sits wherever the operator's prefix length puts it.
NEVER_PUBLIC = (
    ipaddress.ip_network("::/96"),
    ipaddress.ip_network("64:ff9b:1::/48"),
)
# ISATAP interface identifiers (RFC 5214): 00-00-5E-FE or 02-00-5E-FE (the u/g bits aside),
# then the IPv4 address.
_ISATAP_MASK, _ISATAP_ID = 0xFCFFFFFF, 0x00005EFE
IDEMPOTENCY_HEADER = "Idempotency-Key"
# Pauses before recording an outcome again when the database is busy or went away: the POST
# has gone out, so the record is retried here rather than by running the task again.
RECORD_PAUSES = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)


class DeliveryFailed(Exception):
    """The receiver answered with something other than 2xx (a redirect included)."""


class RefusedDestination(Exception):
    """Production refuses the URL: not https, or its host is not a public address. Final:
    retrying would not change the answer."""


# -- where a delivery may go -------------------------------------------------------------


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries: IPv4-mapped and -translated, NAT64,
    6to4 (2002::/16), Teredo (server and client) and ISATAP."""
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    last_32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if any(ip in network for network in LAST_32_BITS_IPV4):
        found.append(last_32)
    elif (int(ip) >> 32) & _ISATAP_MASK == _ISATAP_ID:
        found.append(last_32)
    return found


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast address; False for private, loopback,
    link-local, shared, reserved, multicast and unspecified ones.

    An IPv6 address is public only if every IPv4 address it carries is (embedded_ipv4), and
    an IPv4-mapped one is judged as the IPv4 address it is on the wire. IPv4-compatible
    addresses (::a.b.c.d) and local-use NAT64 (64:ff9b:1::/48) are never public.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if any(ip in network for network in NEVER_PUBLIC):
            return False
        if not all(is_public_address(str(v4)) for v4 in embedded_ipv4(ip)):
            return False
        if ip.ipv4_mapped is not None:
            return True  # its IPv4 address was just found public
    return ip.is_global and not ip.is_multicast


def refused_url(url: str) -> bool:
    """In production, True for a URL that can be refused without resolving its host: not
    https, or its host is localhost or an IP literal that is not public. Checked when a
    request arrives; delivery checks the resolved addresses again."""
    if not current_app.config.get("PRODUCTION"):
        return False
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    if parts.scheme != "https" or not host or host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False  # a name: resolved and checked at delivery
    return not is_public_address(host)


class _PublicOnly:
    """urllib3 connection mixin: resolve the host, refuse unless every address is public,
    then connect to one of exactly those addresses (TLS still checks the host's name)."""

    host: str
    port: int
    timeout: float | None
    source_address: tuple[str, int] | None
    socket_options: list | None

    def _new_conn(self) -> socket.socket:
        try:
            found = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc  # type: ignore[arg-type]
        addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
        if not addresses or not all(is_public_address(a) for a in addresses):
            raise RefusedDestination("address not public")
        error: Exception | None = None
        for address in addresses:
            try:
                return create_connection(
                    (address, self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except TimeoutError:
                error = ConnectTimeoutError(self, f"Connection to {self.host} timed out.")
            except OSError as exc:
                error = NewConnectionError(
                    self,  # type: ignore[arg-type]
                    f"Failed to establish a new connection: {type(exc).__name__}",
                )
        raise error  # type: ignore[misc]


class _PublicHTTPConnection(_PublicOnly, HTTPConnection):
    pass


class _PublicHTTPSConnection(_PublicOnly, HTTPSConnection):
    pass


class _PublicHTTPPool(HTTPConnectionPool):
    ConnectionCls = _PublicHTTPConnection


class _PublicHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PublicHTTPSConnection


class _PublicOnlyAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _PublicHTTPPool,
            "https": _PublicHTTPSPool,
        }


def _session(production: bool) -> requests.Session:
    session = requests.Session()
    # Neither the worker's proxy variables nor its .netrc passwords go to a controller's URL.
    session.trust_env = False
    if production:
        adapter = _PublicOnlyAdapter()
        session.mount("http://", adapter)
        session.mount("https://", adapter)
    return session


def post(url: str, body: bytes, headers: dict[str, str]) -> None:
    """POST once; raises DeliveryFailed (non-2xx), RefusedDestination or a requests error.
    The answer's body is never read: only its status code counts."""
    production = bool(current_app.config.get("PRODUCTION"))
    if production and urlsplit(url).scheme != "https":
        raise RefusedDestination("https required")
    with _session(production) as session:
        response = session.post(
            url,
            data=body,
            headers=headers,
            timeout=TIMEOUT_SECONDS,
            allow_redirects=False,
            stream=True,
        )
        with response:
            if not 200 <= response.status_code < 300:
                raise DeliveryFailed(f"HTTP {response.status_code}")


# -- counted deliveries ------------------------------------------------------------------


def idempotency_key(table: str, row_id: int, created_at: datetime) -> str:
    """The key of one delivery, as a UUID: the same on every try of it (the row's table, id
    and creation time, keyed with SECRET_KEY so that it reveals no row id), different for
    every other delivery. Sent as `Idempotency-Key`; mail uses it in its Message-ID."""
    stamp = created_at.astimezone(UTC).isoformat()
    material = f"idempotency-key:{table}:{row_id}:{stamp}".encode()
    secret = str(current_app.config["SECRET_KEY"]).encode()
    digest = hmac.new(secret, material, hashlib.sha256).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


@dataclass(frozen=True)
class Outgoing:
    """One counted try, ready to send: `attempt` is its number (1 for the first)."""

    url: str
    body: bytes
    headers: dict[str, str]
    attempt: int


@dataclass(frozen=True)
class Outcome:
    """What a try came to. `error` is a status code or an error's class, never the answer."""

    attempt: int
    delivered: bool
    error: str | None = None
    final: bool = False

    @property
    def state(self) -> str:
        return "delivered" if self.delivered else "failed" if self.final else "pending"


def outcome_of(outgoing: Outgoing) -> Outcome:
    """POST `outgoing` once and say how it went; the last try's failure is final."""
    try:
        post(outgoing.url, outgoing.body, outgoing.headers)
    except (DeliveryFailed, RefusedDestination) as exc:
        refused = isinstance(exc, RefusedDestination)
        error = f"refused: {exc}" if refused else str(exc)
        final = refused or outgoing.attempt >= MAX_ATTEMPTS
        return Outcome(outgoing.attempt, False, error[:200], final)
    except (requests.RequestException, SoftTimeLimitExceeded) as exc:
        final = outgoing.attempt >= MAX_ATTEMPTS
        return Outcome(outgoing.attempt, False, type(exc).__name__, final)
    return Outcome(outgoing.attempt, True)


def deliver(
    task: Task,
    *,
    claim: Callable[[], Outgoing | str],
    record: Callable[[Outcome], None],
) -> str:
    """Run one try of a delivery task, with the database transactions around the POST.

    `claim()` runs in a write transaction: it loads the delivery's row and either returns a
    state to stop with (not pending any more, nothing to send) or counts the try on the row
    and returns the Outgoing (with its IDEMPOTENCY_HEADER); that transaction commits before
    anything is sent. The POST then runs outside any transaction, and `record(outcome)` in a
    write transaction of its own, retried in place (record_in_place) when the database is
    busy, so an outcome is never lost to a lock and a sent try is never sent again for one.
    Returns "delivered", "failed" or the claim's state; otherwise raises the task's retry,
    after 2 s * 2**(tries - 1) (CALLBACK_RETRY_BASE_SECONDS sets the 2).
    """
    begin_write()
    outgoing = claim()
    db.session.commit()
    if isinstance(outgoing, str):
        return outgoing
    outcome = outcome_of(outgoing)
    record_in_place(lambda: record(outcome))
    if outcome.delivered or outcome.final:
        return outcome.state
    base = current_app.config.get("CALLBACK_RETRY_BASE_SECONDS", 2)
    raise task.retry(countdown=base * 2 ** (outcome.attempt - 1))


def record_in_place(write: Callable[[], None]) -> None:
    """Run `write()` in a write transaction and commit it, again after each of RECORD_PAUSES
    while the database is busy or went away: for what happens after something was sent, so
    that a lock never makes the task run again and send it again. Raises the last
    OperationalError when every pause is used up."""
    for number, pause in enumerate(RECORD_PAUSES, start=1):
        time.sleep(pause)
        try:
            begin_write()
            write()
            db.session.commit()
            return
        except OperationalError as exc:
            db.session.rollback()
            if number == len(RECORD_PAUSES):
                raise
            logger.info("outcome not recorded yet (%s); trying again", type(exc.orig).__name__)
