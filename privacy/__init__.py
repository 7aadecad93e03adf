"""The privacy service. Kept light: the log scrubber (privacy.scrubber) is used as a library
by programs that have no Flask, so importing this package must not import the web stack."""

from __future__ import annotations

import gc


def create_app(overrides: dict | None = None):
    """Build the Flask app; see privacy.app.create_app.

    The cyclic garbage collector is paused meanwhile: importing the app's modules and building
    it allocate hundreds of thousands of objects that live as long as the process, and the
    collections they would trigger find nothing to free while taking a tenth of the start-up.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        # Imported here, not above: `import privacy` must not import Flask (see the docstring).
        from privacy.app import create_app as build

        return build(overrides)
    finally:
        if collecting:
            gc.enable()
