"""Where the project's files are: the checkout (templates/, migrations/, Procfile) and the
package. Imports nothing of the service, so anything may import it."""

from __future__ import annotations

from pathlib import Path

# The package folder (privacy/), whose sub-packages are the domains.
PACKAGE = Path(__file__).resolve().parent
# The project folder: templates/, migrations/, instance/ by default.
ROOT = PACKAGE.parent
