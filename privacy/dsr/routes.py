"""REST API of the account's data-subject requests under /api/v1/requests (oversight and
exceptions for admins and members: list, detail with history, extend, reject, confirm)."""

from __future__ import annotations

from flask_smorest import Blueprint

bp = Blueprint(
    "requests",
    __name__,
    url_prefix="/api/v1",
    description="The account's data-subject requests: oversight, extensions, rejections.",
)
