"""Sign in with Google: OpenID Connect authorization code flow with state, nonce and PKCE."""

from __future__ import annotations

import hashlib
import logging
import threading

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import OAuth
from authlib.integrations.flask_client import OAuthError
from flask import Blueprint
from flask import Flask
from flask import abort
from flask import current_app
from flask import request
from flask import session as cookie
from joserfc.errors import JoseError

from privacy import links
from privacy.auth.pages import complete_sign_in
from privacy.auth.permissions import public
from privacy.database import writes
from privacy.pages import render_page
from privacy.pages import safe_next
from privacy.validation import normalize_email

logger = logging.getLogger(__name__)

bp = Blueprint("google", __name__)
oauth = OAuth()

CALLBACK_PATH = "/auth/google/callback"
NEXT_KEY = "google_next"
TIMEOUT_SECONDS = 10  # per call to the provider: discovery, keys, token
LEEWAY_SECONDS = 60  # clock skew allowed on the ID token's exp and iat
# Error codes of RFC 6749 4.1.2.1 and OIDC Core 3.1.2.6; anything else is logged as "other"
# (the parameter is whatever the URL says, and a URL can carry an e-mail).
PROVIDER_ERRORS = frozenset(
    {
        "access_denied",
        "invalid_request",
        "unauthorized_client",
        "unsupported_response_type",
        "invalid_scope",
        "server_error",
        "temporarily_unavailable",
        "interaction_required",
        "login_required",
        "account_selection_required",
        "consent_required",
    }
)
# Token-endpoint errors (RFC 6749 5.2) and Authlib's own for a missing or forged state.
TOKEN_ERRORS = frozenset(
    {
        "invalid_grant",
        "invalid_client",
        "unsupported_grant_type",
        "mismatching_state",
    }
)
GOOGLE = "https://accounts.google.com"
# What the provider, the network or a forged callback can raise while the flow runs.
FLOW_ERRORS = (AuthlibBaseError, JoseError, requests.RequestException, ValueError, RuntimeError)

_lock = threading.Lock()

BROKEN = (
    "Google sign-in did not complete: the answer did not match the sign-in this browser "
    "started. Start again from the sign-in page."
)
DENIED = (
    "Google sign-in was cancelled or refused. Start again from the sign-in page, or ask for "
    "a sign-in link by e-mail."
)
UNREACHABLE = (
    "Google cannot be reached right now. Try again in a few minutes, or ask for a sign-in "
    "link by e-mail."
)
UNVERIFIED = (
    "Google has not verified this e-mail address, so it cannot be used to sign in here. "
    "Verify it with Google first, or ask for a sign-in link by e-mail."
)


class ProviderMisconfigured(Exception):
    """The discovery document names another issuer than PRIVACY_OIDC_ISSUER."""


def init_app(app: Flask) -> None:
    """Bind the Authlib registry; the client of the configured issuer is registered now
    (when an OIDC client id is set) and again whenever the configuration names another."""
    oauth.init_app(app)
    # Authlib logs each PKCE verifier at DEBUG; the service's logs carry no secrets.
    logging.getLogger("authlib").setLevel(logging.INFO)
    if app.config.get("OIDC_CLIENT_ID"):
        with app.app_context():
            client()


def client():
    """The Authlib client of the configured issuer and client id, registered on first use.

    One client per (issuer, client id): each keeps its provider's discovery document and
    keys. The name is a digest of those public values (it appears in the session's state
    keys); a changed secret is taken over by the existing client.
    """
    config = current_app.config
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


def redirect_uri() -> str:
    """The callback registered at the provider: from BASE_URL, never from the request's Host."""
    return links.external(CALLBACK_PATH)


def _discover(google) -> None:
    """Load the discovery document (cached by the client); OIDC Discovery 4.3: its issuer
    must be the one configured, or a look-alike could hand out keys and endpoints."""
    metadata = google.load_server_metadata()
    if metadata.get("issuer") != current_app.config["OIDC_ISSUER"].rstrip("/"):
        raise ProviderMisconfigured()


def _drop_pending_flows(google) -> None:
    # Authlib keeps one entry per started sign-in in the cookie until its callback; a
    # browser that starts several without finishing would outgrow the 4 KB cookie. The
    # newest start wins.
    prefix = f"_state_{google.name}_"
    for key in [k for k in cookie if k.startswith(prefix)]:
        cookie.pop(key, None)


@bp.post("/auth/google")
@public
def start():
    """Redirect to the provider; state, nonce and the PKCE verifier wait in the session."""
    if not current_app.config.get("OIDC_CLIENT_ID"):
        abort(404)
    try:
        google = client()
        _discover(google)
        _drop_pending_flows(google)
        cookie[NEXT_KEY] = safe_next(request.form.get("next"), "")
        response = google.authorize_redirect(redirect_uri())
    except (*FLOW_ERRORS, ProviderMisconfigured) as exc:
        return _refused(exc, "start")
    response.status_code = 303  # the browser follows with a GET
    return response


@bp.get(CALLBACK_PATH)
@writes
@public
def callback():
    """Exchange the code, validate the ID token, and sign in a verified member's address."""
    if not current_app.config.get("OIDC_CLIENT_ID"):
        abort(404)
    next_url = cookie.pop(NEXT_KEY, None)
    error = request.args.get("error")
    if error:
        reason = error if error in PROVIDER_ERRORS else "other"
        logger.info("google sign-in: the provider answered error=%s", reason)
        _drop_pending_flows(client())
        return render_page("auth/link_refused.html", 400, message=DENIED)
    try:
        google = client()
        _discover(google)
        token = google.authorize_access_token(
            claims_options=_claims_options(), leeway=LEEWAY_SECONDS
        )
    except (*FLOW_ERRORS, ProviderMisconfigured) as exc:
        return _refused(exc, "callback")
    # Authlib validates an ID token only when the token response has one: no ID token, no
    # verified identity.
    claims = token.get("userinfo")
    if not claims:
        logger.warning("google sign-in refused: no ID token in the token response")
        return render_page("auth/link_refused.html", 400, message=BROKEN)
    if claims.get("email_verified") is not True:
        logger.info("google sign-in refused: e-mail not verified by the provider")
        return render_page("auth/not_allowed.html", 403, message=UNVERIFIED)
    try:
        email = normalize_email(claims.get("email") or "")
    except (TypeError, ValueError):
        logger.warning("google sign-in refused: no usable e-mail in the ID token")
        return render_page("auth/link_refused.html", 400, message=BROKEN)
    return complete_sign_in(email, method="google", next_url=next_url)


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


def _refused(exc: Exception, step: str):
    """The page for a failed flow. Logged by error class only: the messages of provider
    and token errors can quote claims and tokens."""
    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        logger.error("google sign-in %s: provider unreachable (%s)", step, type(exc).__name__)
        return render_page("auth/link_refused.html", 503, message=UNREACHABLE)
    response = getattr(exc, "response", None)
    if isinstance(exc, requests.HTTPError) and response is not None and response.status_code >= 500:
        logger.error("google sign-in %s: provider failed (HTTP %s)", step, response.status_code)
        return render_page("auth/link_refused.html", 502, message=UNREACHABLE)
    if isinstance(exc, ProviderMisconfigured):
        logger.error("google sign-in %s: the discovery document names another issuer", step)
        return render_page("auth/link_refused.html", 400, message=BROKEN)
    reason = type(exc).__name__
    if isinstance(exc, OAuthError) and exc.error in PROVIDER_ERRORS | TOKEN_ERRORS:
        # mismatching_state: a missing, forged or replayed state; invalid_grant: the
        # provider refused the code or the PKCE verifier.
        reason = exc.error
    logger.warning("google sign-in %s refused: %s", step, reason)
    return render_page("auth/link_refused.html", 400, message=BROKEN)
