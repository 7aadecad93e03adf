"""Art. 12(3) deadlines: one calendar month from receipt, one extension of up to two more.

"One month" is the calendar month: 15 March -> 15 April, and a day the next month lacks
falls back to its last day (31 January -> 28 or 29 February, 31 March -> 30 April).
"""

from __future__ import annotations

from datetime import datetime

from dateutil.relativedelta import relativedelta

MAX_EXTENSION_MONTHS = 2


def due_date(received_at: datetime) -> datetime:
    return received_at + relativedelta(months=1)


def extended_due_date(received_at: datetime, months: int) -> datetime:
    """The due date after an extension of `months` (1 or 2) beyond the first month."""
    if not 1 <= months <= MAX_EXTENSION_MONTHS:
        raise ValueError(f"an extension is 1 to {MAX_EXTENSION_MONTHS} months")
    return received_at + relativedelta(months=1 + months)


def can_extend(
    *, received_at: datetime, due_at: datetime, extended_at, now: datetime
) -> str | None:
    """None if an extension is allowed now, else the reason it is not."""
    if extended_at is not None:
        return "The request was extended already; the GDPR allows one extension."
    if now >= due_date(received_at):
        return "An extension must be decided before the first due date, which has passed."
    return None
