"""Pages of the account's data-subject requests (and the DPO's view across accounts)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("dsr_pages", __name__)
