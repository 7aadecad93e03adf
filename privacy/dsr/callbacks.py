"""OpenDSR status callbacks: one signed POST to every callback URL on every status change,
retried with backoff; deliveries that keep failing stay visible to the account's admins.

A delivery never follows a redirect (a 3xx counts as a failure), never reads the receiver's
answer beyond its status code, and never uses proxy variables or .netrc credentials of the
worker's environment. In production a URL must be https and every address its host resolves
to must be public: the check runs on the addresses the socket then connects to, so a DNS
answer that changes between the check and the connection (rebinding) gains nothing.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
from urllib.parse import urlsplit

import requests
from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from flask import current_app
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.connectionpool import HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError
from urllib3.exceptions import NameResolutionError
from urllib3.exceptions import NewConnectionError
from urllib3.util.connection import create_connection

from privacy import jobs
from privacy.database import utcnow
from privacy.dsr.models import CallbackDelivery
from privacy.dsr.models import DataSubjectRequest
from privacy.extensions import db

logger = logging.getLogger(__name__)
TIMEOUT_SECONDS = (5, 10)  # connect, read
MAX_RETRIES = 8  # backoff 2, 4, ... 256 s: about eight and a half minutes in all
USER_AGENT = "privacy-opendsr-callbacks/1"
# NAT64 embeds an IPv4 address in its last 32 bits; the embedded one must be public too.
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class CallbackFailed(Exception):
    """The receiver answered with something other than 2xx (a redirect included)."""


class RefusedDestination(Exception):
    """Production refuses the URL: not https, or its host is not a public address. Final:
    retrying would not change the answer."""


def queue_status_callbacks(request: DataSubjectRequest) -> None:
    """A delivery row per callback URL (a URL listed twice is called once), sent after the
    commit by `deliver`."""
    for url in dict.fromkeys(request.callback_urls or ()):
        delivery = CallbackDelivery(
            request_id=request.id,
            url=url,
            status=request.opendsr_status,
            created_at=utcnow(),
        )
        db.session.add(delivery)
        db.session.flush()
        jobs.after_commit(deliver, delivery.id)


def body_for(request: DataSubjectRequest, url: str, status: str) -> dict:
    """The callback's JSON: the status recorded when the delivery was queued (a retried
    in_progress callback stays in_progress), with the results only when it says completed."""
    from privacy.dsr import opendsr

    body = {
        "controller_id": opendsr.controller_id(request),
        "status_callback_url": url,
        "subject_request_id": str(request.subject_request_id),
        "request_status": status,
        "expected_completion_time": opendsr.rfc3339(request.due_at),
    }
    if status == "completed":
        body.update(opendsr.results_fields(request))
    return body


# -- where a callback may go -------------------------------------------------------------


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


def _post(url: str, body: bytes, headers: dict[str, str]) -> None:
    """POST once; raises CallbackFailed (non-2xx), RefusedDestination or a requests error.
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
                raise CallbackFailed(f"HTTP {response.status_code}")


# -- delivery ----------------------------------------------------------------------------


@shared_task(
    name="dsr.deliver_callback",
    bind=True,
    max_retries=MAX_RETRIES,
    acks_late=True,
    soft_time_limit=60,  # bounds a receiver that trickles its headers (prefork pools)
    time_limit=90,
)
def deliver(self, delivery_id: int) -> str:
    """Send one delivery (unless it is no longer pending: a delivered one is never sent
    again). Every try counts in `attempts`; a failure records only the status code or the
    error's class in `last_error` and retries after CALLBACK_RETRY_BASE_SECONDS * 2**n;
    after MAX_RETRIES retries, or at once when production refuses the URL, it is "failed"."""
    from privacy.dsr import signing

    delivery = db.session.get(CallbackDelivery, delivery_id)
    if delivery is None:
        return "gone"
    if delivery.state != "pending":
        return delivery.state
    request = db.session.get(DataSubjectRequest, delivery.request_id)
    body = json.dumps(body_for(request, delivery.url, delivery.status)).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **signing.get().headers(body),
    }
    delivery.attempts += 1
    try:
        _post(delivery.url, body, headers)
    except (CallbackFailed, RefusedDestination) as exc:
        error, final = str(exc), isinstance(exc, RefusedDestination)
        if final:
            error = f"refused: {error}"
    except (requests.RequestException, SoftTimeLimitExceeded) as exc:
        error, final = type(exc).__name__, False
    else:
        delivery.state = "delivered"
        delivery.delivered_at = utcnow()
        delivery.last_error = None
        db.session.commit()
        return "delivered"

    delivery.last_error = error[:200]
    final = final or self.request.retries >= self.max_retries
    if final:
        delivery.state = "failed"
    db.session.commit()
    logger.warning(
        "callback %s for request %s failed (%s, attempt %s%s)",
        delivery.id,
        request.public_id,
        delivery.last_error,
        delivery.attempts,
        ", giving up" if final else "",
    )
    if final:
        return "failed"
    base = current_app.config.get("CALLBACK_RETRY_BASE_SECONDS", 2)
    raise self.retry(countdown=base * 2**self.request.retries)
