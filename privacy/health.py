"""Liveness and readiness probes, and the locally served Swagger UI assets."""

from __future__ import annotations

import logging

import swagger_ui_bundle
from flask import Blueprint
from flask import Response
from flask import current_app
from flask import send_from_directory
from sqlalchemy import text

from privacy import storage
from privacy.auth.permissions import public
from privacy.extensions import db

logger = logging.getLogger(__name__)
bp = Blueprint("health", __name__)


@bp.get("/healthz")
@public
def healthz():
    return {"status": "ok"}


def _check_database() -> None:
    db.session.execute(text("SELECT 1"))
    db.session.rollback()


def _check_broker() -> None:
    celery = current_app.extensions["celery"]
    with celery.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=2)


def _check_storage() -> None:
    storage.get().check()


@bp.get("/readyz")
@public
def readyz():
    """200 when database, broker and object storage answer; 503 naming each that does not."""
    checks = {}
    for name, probe in (
        ("database", _check_database),
        ("broker", _check_broker),
        ("storage", _check_storage),
    ):
        try:
            probe()
            checks[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
            logger.warning("readiness check %s failed: %s", name, type(exc).__name__)
            checks[name] = f"unavailable ({type(exc).__name__})"
    failed = sorted(name for name, state in checks.items() if state != "ok")
    if failed:
        body = {
            "code": 503,
            "status": "Service Unavailable",
            "message": "Not ready: " + ", ".join(failed) + " unreachable.",
            "checks": checks,
        }
        return body, 503
    return {"status": "ready", "checks": checks}


@bp.get("/api/docs/assets/<path:filename>")
@public
def swagger_assets(filename: str):
    """Swagger UI served from the installed package: no CDN, so no visitor data leaves."""
    return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename, max_age=86400)


# Starts Swagger UI from the page's data attributes. templates/swagger_ui.html (which
# replaces flask-smorest's) loads it as a file because the Content-Security-Policy
# (privacy/security.py) runs no inline script.
SWAGGER_INIT_JS = """\
"use strict";
(function () {
  var container = document.getElementById("swagger-ui-container");
  var config = {
    url: container.dataset.specUrl,
    dom_id: "#swagger-ui-container",
    // The public validator would fetch our spec, and is blocked by the policy anyway.
    validatorUrl: null
  };
  var overrides = JSON.parse(container.dataset.config || "{}");
  Object.keys(overrides).forEach(function (key) { config[key] = overrides[key]; });
  window.ui = SwaggerUIBundle(config);
})();
"""


@bp.get("/api/docs/init.js")
@public
def swagger_init():
    response = Response(SWAGGER_INIT_JS, mimetype="text/javascript")
    response.cache_control.public = True
    response.cache_control.max_age = 3600
    return response
