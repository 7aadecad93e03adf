"""The privacy service. Kept light: the log scrubber (privacy.scrubber) is used as a library
by programs that have no Flask, so importing this package must not import the web stack."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def create_app(overrides: dict | None = None):
    """Build the Flask app; see privacy.app.create_app."""
    from privacy.app import create_app as build

    return build(overrides)
