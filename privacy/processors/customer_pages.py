"""The customer's side of the register: the account's sub-processor page (effective list,
pending changes, objections, webhook) and the public Atom feed of changes."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("processor_account_pages", __name__)
