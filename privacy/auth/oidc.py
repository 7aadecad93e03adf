"""The OpenID Connect client behind "Sign in with Google", through Authlib: the provider's
registration, discovery, the authorization redirect and the code exchange, and what their
errors mean.

Imported only where Google sign-in is configured and used (privacy.auth.google): Authlib,
joserfc and requests take about a tenth of a second to import, which no other process
should pay for.
"""

from __future__ import annotations

import hashlib
import logging
import threading

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import OAuth
from authlib.integrations.flask_client import OAuthError
from flask import Flask
from flask import current_app
from flask import session as cookie
from joserfc.errors import JoseError

oauth = OAuth()
_lock = threading.Lock()

TIMEOUT_SECONDS = 10  # per call to the provider: discovery, keys, token
LEEWAY_SECONDS = 60  # clock skew allowed on the ID token's exp and iat
GOOGLE = "https://accounts.google.com"
# Token-endpoint errors (RFC 6749 5.2) and Authlib's own for a missing or forged state.
TOKEN_ERRORS = frozenset(
    {
        "invalid_grant",
        "invalid_client",
        "unsupported_grant_type",
        "mismatching_state",
    }
)
# What the provider, the network or a forged callback can raise while the flow runs.
FLOW_ERRORS = (AuthlibBaseError, JoseError, requests.RequestException, ValueError, RuntimeError)


class ProviderMisconfigured(Exception):
    """The discovery document names another issuer than PRIVACY_OIDC_ISSUER."""


def init_app(app: Flask) -> None:
    """Bind the Authlib registry to `app` and register the configured issuer's client."""
    _bind(app)
    with app.app_context():
        client()


def _bind(app: Flask) -> None:
    oauth.init_app(app)
    # Authlib logs each PKCE verifier at DEBUG; the service's logs carry no secrets.
    logging.getLogger("authlib").setLevel(logging.INFO)


def client():
    """The Authlib client of the configured issuer and client id, registered on first use.

    One client per (issuer, client id): each keeps its provider's discovery document and
    keys. The name is a digest of those public values (it appears in the session's state
    keys); a changed secret is taken over by the existing client.
    """
    app = current_app._get_current_object()
    if oauth.app is not app:  # configured after the app was made, or another app's turn
        _bind(app)
    config = app.config
    issuer = config["OIDC_ISSUER"].rstrip("/")
    client_id = config["OIDC_CLIENT_ID"]
    name = "google_" + hashlib.sha256(f"{issuer}\n{client_id}".encode()).hexdigest()[:16]
    with _lock:
        found = oauth.create_client(name)
        if found is None:
            found = oauth.register(
                name,
                client_id=client_id,
                client_secret=config.get("OIDC_CLIENT_SECRET"),
                server_metadata_url=f"{issuer}/.well-known/openid-configuration",
                client_kwargs={
                    "scope": "openid email profile",
                    "code_challenge_method": "S256",
                    "default_timeout": TIMEOUT_SECONDS,
                },
            )
        found.client_secret = config.get("OIDC_CLIENT_SECRET")
    return found


def discover(google) -> None:
    """Load the discovery document (cached by the client); OIDC Discovery 4.3: its issuer
    must be the one configured, or a look-alike could hand out keys and endpoints."""
    metadata = google.load_server_metadata()
    if metadata.get("issuer") != current_app.config["OIDC_ISSUER"].rstrip("/"):
        raise ProviderMisconfigured()


def drop_pending_flows(google) -> None:
    # Authlib keeps one entry per started sign-in in the cookie until its callback; a
    # browser that starts several without finishing would outgrow the 4 KB cookie. The
    # newest start wins.
    prefix = f"_state_{google.name}_"
    for key in [k for k in cookie if k.startswith(prefix)]:
        cookie.pop(key, None)


def authorize_redirect(google, redirect_uri: str):
    """The redirect to the provider; state, nonce and the PKCE verifier wait in the session."""
    return google.authorize_redirect(redirect_uri)


def exchange(google) -> dict:
    """Exchange the callback's code and validate the ID token; the token response."""
    return google.authorize_access_token(claims_options=_claims_options(), leeway=LEEWAY_SECONDS)


def _claims_options() -> dict:
    """Issuer and audience checked against our configuration (Authlib alone would take the
    issuer from the discovery document, and accept another audience that names us as azp)."""
    issuer = current_app.config["OIDC_ISSUER"].rstrip("/")
    issuers = [issuer]
    if issuer == GOOGLE:
        issuers.append("accounts.google.com")  # Google documents both forms of its iss
    return {
        "iss": {"essential": True, "values": issuers},
        "aud": {"essential": True, "value": current_app.config["OIDC_CLIENT_ID"]},
    }


def failure(exc: Exception, provider_errors: frozenset[str]) -> tuple[str, str]:
    """What a failed flow was, as (kind, reason for the log): kind is "unreachable" (the
    network), "provider" (the provider answered 5xx), "misconfigured" (another issuer) or
    "refused" (anything else: a forged or replayed state, a refused code or verifier, a bad
    token). The reason is an error code or class name, never a message: the messages of
    provider and token errors can quote claims and tokens."""
    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        return "unreachable", type(exc).__name__
    response = getattr(exc, "response", None)
    if isinstance(exc, requests.HTTPError) and response is not None and response.status_code >= 500:
        return "provider", f"HTTP {response.status_code}"
    if isinstance(exc, ProviderMisconfigured):
        return "misconfigured", "the discovery document names another issuer"
    reason = type(exc).__name__
    if isinstance(exc, OAuthError) and exc.error in provider_errors | TOKEN_ERRORS:
        # mismatching_state: a missing, forged or replayed state; invalid_grant: the
        # provider refused the code or the PKCE verifier.
        reason = exc.error
    return "refused", reason
