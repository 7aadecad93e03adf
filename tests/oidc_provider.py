"""A small but real OpenID Connect provider on loopback, for the Google sign-in tests.

Discovery, JWKS, an authorization endpoint without a login screen (the test says who signs
in next, and how the provider should misbehave) and a token endpoint that checks the client's
credentials, the redirect URI and the PKCE verifier before it signs an RS256 ID token.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import secrets
import threading
import time
from urllib.parse import unquote_plus
from urllib.parse import urlencode

from flask import Flask
from flask import jsonify
from flask import redirect
from flask import request
from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jwk import RSAKey
from werkzeug.serving import WSGIRequestHandler
from werkzeug.serving import make_server

CODE_SECONDS = 60


@dataclasses.dataclass
class Login:
    """Who the next authorization signs in, and what the provider does wrong (if anything)."""

    email: str = "admin@acme.example"
    email_verified: bool = True
    sub: str = "google-user-1"
    deny: bool = False  # redirect back with error=access_denied
    nonce: str | None = None  # put this nonce in the ID token instead of the requested one
    audience: str | None = None  # issue the ID token to another client (azp stays ours)
    expired: bool = False  # an ID token that expired an hour ago
    wrong_key: bool = False  # signed by a key that is not in the JWKS (same kid)
    id_token: bool = True  # False: a token response without an ID token


class _Quiet(WSGIRequestHandler):
    # The request lines carry state, nonce and codes; the tests read the captured logs.
    def log_request(self, *args, **kwargs):
        pass

    def log(self, *args, **kwargs):
        pass


class OIDCProvider:
    """Run with `with OIDCProvider(...) as provider:`; `provider.issuer` is its address."""

    def __init__(self, client_id: str, client_secret: str, redirect_uris: list[str]) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uris = list(redirect_uris)
        params = {"kid": "test-key-1", "use": "sig", "alg": "RS256"}
        self.key = RSAKey.generate_key(2048, parameters=params)
        self.impostor_key = RSAKey.generate_key(2048, parameters=params)
        self._server = make_server(
            "127.0.0.1", 0, self._app(), threaded=True, request_handler=_Quiet
        )
        self.issuer = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.reset()

    def reset(self) -> None:
        self.login = Login()
        self.authorizations: list[dict] = []  # the parameters of each /authorize request
        self.token_requests: list[dict] = []  # what each /token request sent, and the answer
        self.issued: list[str] = []  # access and ID tokens handed out
        self._codes: dict[str, dict] = {}

    def __enter__(self) -> OIDCProvider:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    # -- the endpoints -----------------------------------------------------------------

    def _app(self) -> Flask:
        app = Flask("oidc_provider")
        app.add_url_rule("/.well-known/openid-configuration", view_func=self._discovery)
        app.add_url_rule("/jwks", view_func=self._jwks)
        app.add_url_rule("/authorize", view_func=self._authorize)
        app.add_url_rule("/token", view_func=self._token, methods=["POST"])
        return app

    def _discovery(self):
        return jsonify(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "email", "profile"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
                "code_challenge_methods_supported": ["S256"],
                "claims_supported": ["iss", "aud", "exp", "iat", "sub", "email", "email_verified"],
            }
        )

    def _jwks(self):
        return jsonify(KeySet([self.key]).as_dict(private=False))

    def _authorize(self):
        args = request.args.to_dict()
        self.authorizations.append(args)
        redirect_uri = args.get("redirect_uri", "")
        if args.get("client_id") != self.client_id or redirect_uri not in self.redirect_uris:
            # RFC 6749 4.1.2.1: never redirect to an unregistered address.
            return "unknown client or redirect_uri", 400
        back = {"state": args["state"]} if "state" in args else {}
        login = dataclasses.replace(self.login)
        problem = None
        if args.get("response_type") != "code":
            problem = "unsupported_response_type"
        elif "openid" not in args.get("scope", "").split():
            problem = "invalid_scope"
        elif not args.get("state") or not args.get("nonce"):
            problem = "invalid_request"
        elif args.get("code_challenge_method") != "S256" or not args.get("code_challenge"):
            problem = "invalid_request"  # this provider insists on PKCE with S256
        elif login.deny:
            problem = "access_denied"
        if problem:
            return redirect(f"{redirect_uri}?{urlencode({'error': problem, **back})}")
        code = secrets.token_urlsafe(24)
        self._codes[code] = {
            "login": login,
            "redirect_uri": redirect_uri,
            "nonce": args["nonce"],
            "code_challenge": args["code_challenge"],
            "expires": time.time() + CODE_SECONDS,
        }
        return redirect(f"{redirect_uri}?{urlencode({'code': code, **back})}")

    def _token(self):
        form = request.form
        record = {
            "client_auth": None,
            "code_verifier": form.get("code_verifier"),
            "redirect_uri": form.get("redirect_uri"),
        }
        self.token_requests.append(record)

        def refuse(error: str, status: int = 400):
            record["answer"] = error
            return jsonify({"error": error}), status

        method, client_id, secret = self._client_credentials()
        record["client_auth"] = method
        if client_id != self.client_id or not secrets.compare_digest(
            secret or "", self.client_secret
        ):
            return refuse("invalid_client", 401)
        if form.get("grant_type") != "authorization_code":
            return refuse("unsupported_grant_type")
        grant = self._codes.pop(form.get("code", ""), None)  # a code works once
        if grant is None or grant["expires"] < time.time():
            return refuse("invalid_grant")
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return refuse("invalid_grant")
        verifier = form.get("code_verifier") or ""
        digest = hashlib.sha256(verifier.encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        if not verifier or not secrets.compare_digest(challenge, grant["code_challenge"]):
            record["pkce"] = "mismatch"
            return refuse("invalid_grant")
        record["pkce"] = "verified"
        record["answer"] = "token"
        access_token = secrets.token_urlsafe(32)
        body = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": "openid email profile",
        }
        self.issued.append(access_token)
        if grant["login"].id_token:
            body["id_token"] = self._id_token(grant["login"], grant["nonce"])
            self.issued.append(body["id_token"])
        return jsonify(body)

    def _client_credentials(self) -> tuple[str, str | None, str | None]:
        """(method, client id, secret) from HTTP Basic or the form (client_secret_post)."""
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                decoded = base64.b64decode(header[6:]).decode()
            except ValueError:
                return "basic", None, None
            client_id, _, secret = decoded.partition(":")
            # RFC 6749 2.3.1 form-urlencodes both halves first; Authlib 1.9 does not, and
            # the ids and secrets in these tests read the same either way.
            return "basic", unquote_plus(client_id), unquote_plus(secret)
        return "post", request.form.get("client_id"), request.form.get("client_secret")

    def _id_token(self, login: Login, nonce: str) -> str:
        now = int(time.time())
        issued_at = now - 7200 if login.expired else now
        claims = {
            "iss": self.issuer,
            "aud": login.audience or self.client_id,
            "azp": self.client_id,
            "sub": login.sub,
            "iat": issued_at,
            "exp": issued_at + 3600,
            "nonce": login.nonce or nonce,
            "email": login.email,
            "email_verified": login.email_verified,
        }
        key = self.impostor_key if login.wrong_key else self.key
        return jwt.encode({"alg": "RS256", "kid": key.kid, "typ": "JWT"}, claims, key)
