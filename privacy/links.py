"""Absolute links in mail, callbacks, feeds and documents: built from PRIVACY_BASE_URL only.

Every process (gunicorn, the worker, `flask` commands) must build the same links, and none
may take the address from a request's Host header, so the base URL is a setting, never a
guess from the process's own port.
"""

from __future__ import annotations

from flask import current_app

from privacy.config import ConfigError

MISSING = (
    "PRIVACY_BASE_URL is not set: links in e-mails and callbacks need the service's public "
    "address, e.g. PRIVACY_BASE_URL=http://127.0.0.1:8000 (`make run` sets it to the address "
    "it serves on)"
)


class MissingBaseURL(ConfigError):
    """A link was needed but PRIVACY_BASE_URL is not set."""


def base_url(config=None) -> str:
    """The configured base URL without a trailing slash; MissingBaseURL when unset."""
    url = (config if config is not None else current_app.config).get("BASE_URL")
    if not url:
        raise MissingBaseURL(MISSING)
    return url.rstrip("/")


def external(path: str) -> str:
    """The absolute URL of `path` (which starts with "/") on the service."""
    return base_url() + path
