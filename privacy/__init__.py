"""The privacy service. Kept light: the log scrubber (privacy.scrubber) is used as a library
by programs that have no Flask, so importing this package must not import the web stack."""

from __future__ import annotations


def create_app(overrides: dict | None = None):
    """Build the Flask app; see privacy.app.create_app."""
    # Imported here, not above: `import privacy` must not import Flask (see the docstring).
    from privacy.app import create_app as build

    return build(overrides)
