"""REST API of the sub-processor register: the public list, and each account's view."""

from __future__ import annotations

from flask_smorest import Blueprint

from privacy.processors import models  # noqa: F401 - the register's tables

bp = Blueprint(
    "processors",
    __name__,
    url_prefix="/api/v1",
    description="Sub-processors: the public list, and what is effective for the account.",
)
