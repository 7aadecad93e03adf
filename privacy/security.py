"""HTTPS enforcement and security headers on every response."""

from __future__ import annotations

from flask import Flask
from flask import redirect
from flask import request


def init_app(app: Flask) -> None:
    _enforce_https(app)


def _enforce_https(app: Flask) -> None:
    if not app.config["FORCE_HTTPS"]:
        return

    @app.before_request
    def require_https():
        # Health probes come from the load balancer over plain HTTP inside the network.
        if not request.is_secure and request.endpoint not in {"health.healthz", "health.readyz"}:
            return redirect(request.url.replace("http://", "https://", 1), code=308)
        return None

    @app.after_request
    def hsts(response):
        response.headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
        return response
