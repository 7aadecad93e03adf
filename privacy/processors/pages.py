"""Pages of the sub-processor register: public list and feed, customers' view, DPO pages."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("processor_pages", __name__)
