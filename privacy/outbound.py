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
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
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
# NAT64 embeds an IPv4 address in its last 32 bits; the embedded one must be public too.
NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Pauses before recording an outcome again when the database is busy or went away: the POST
# has gone out, so the record is retried here rather than by running the task again.
RECORD_PAUSES = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)


class DeliveryFailed(Exception):
    """The receiver answered with something other than 2xx (a redirect included)."""


class RefusedDestination(Exception):
    """Production refuses the URL: not https, or its host is not a public address. Final:
    retrying would not change the answer."""


# -- where a delivery may go -------------------------------------------------------------


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast address; False for private, loopback,
    link-local, shared, reserved, multicast and unspecified ones (IPv4 embedded in IPv6
    included)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or (ip.teredo[1] if ip.teredo else None) or ip.sixtofour
        if embedded is None and ip in NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None and not is_public_address(str(embedded)):
            return False
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
    and returns the Outgoing; that transaction commits before anything is sent. The POST then
    runs outside any transaction, and `record(outcome)` in a write transaction of its own,
    retried here (RECORD_PAUSES) when the database is busy, so an outcome is never lost to a
    lock and a sent try is never sent again for one. Returns "delivered", "failed" or the
    claim's state; otherwise raises the task's retry, after 2 s * 2**(tries - 1)
    (CALLBACK_RETRY_BASE_SECONDS sets the 2).
    """
    begin_write()
    outgoing = claim()
    db.session.commit()
    if isinstance(outgoing, str):
        return outgoing
    outcome = outcome_of(outgoing)
    _record(record, outcome)
    if outcome.delivered or outcome.final:
        return outcome.state
    base = current_app.config.get("CALLBACK_RETRY_BASE_SECONDS", 2)
    raise task.retry(countdown=base * 2 ** (outcome.attempt - 1))


def _record(record: Callable[[Outcome], None], outcome: Outcome) -> None:
    for number, pause in enumerate(RECORD_PAUSES, start=1):
        time.sleep(pause)
        try:
            begin_write()
            record(outcome)
            db.session.commit()
            return
        except OperationalError as exc:
            db.session.rollback()
            if number == len(RECORD_PAUSES):
                raise
            logger.info(
                "delivery outcome not recorded yet (%s); trying again", type(exc.orig).__name__
            )
