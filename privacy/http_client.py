"""The hardened HTTP client of deliveries (requests and urllib3), imported with the first
delivery (privacy.outbound), not at start-up.

It never follows a redirect (a 3xx is a failure), never reads the answer beyond its status
code, and never uses the worker's proxy variables or .netrc credentials. In production a URL
must be https and every address its host resolves to must be public (privacy.addresses):
the check runs on the addresses the socket then connects to, so a DNS answer that changes
between the check and the connection (rebinding) gains nothing.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import requests
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

from privacy.addresses import RefusedDestination
from privacy.addresses import is_public_address

TIMEOUT_SECONDS = (5, 10)  # connect, read
# What the network can raise during a POST (besides DeliveryFailed and RefusedDestination).
NETWORK_ERRORS = (requests.RequestException,)


class DeliveryFailed(Exception):
    """The receiver answered with something other than 2xx (a redirect included)."""


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
