"""The sign-in tests' browsers, mail outbox and SMTP server serve the support tests too."""

from tests.auth.conftest import browser  # noqa: F401
from tests.auth.conftest import new_browser  # noqa: F401
