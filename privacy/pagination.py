"""Opaque cursors for keyset pagination over integer primary keys."""

from __future__ import annotations

import base64
import binascii

from privacy.errors import ValidationFailed
from privacy.schemas import MAX_BIG_INTEGER


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The id after which the next page starts; 422 for a cursor we did not issue."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = raw.partition(":")
        number = int(value)
        if kind != "id" or not 0 <= number <= MAX_BIG_INTEGER:  # beyond, the query overflows
            raise ValueError
        return number
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValidationFailed(errors={"query": {"cursor": ["Not a valid cursor."]}}) from None


def page(rows: list, limit: int) -> dict:
    """Given up to limit+1 rows in id order, the page and the cursor of the next one."""
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": rows, "next_cursor": encode_cursor(rows[-1].id) if more and rows else None}
