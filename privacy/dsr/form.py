"""The public request form per account: /privacy-request/<account public id>."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("dsr_form", __name__)
