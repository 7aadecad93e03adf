"""Art. 12(3) deadline arithmetic: calendar months, month ends, leap years, one extension."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

import pytest

from privacy.dsr import deadlines


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    "received,due",
    [
        ("2026-03-15 09:30", "2026-04-15 09:30"),
        ("2026-01-31 12:00", "2026-02-28 12:00"),  # no 31 February: the month's last day
        ("2028-01-31 12:00", "2028-02-29 12:00"),  # leap year
        ("2028-01-30 00:00", "2028-02-29 00:00"),
        ("2026-03-31 23:59", "2026-04-30 23:59"),
        ("2026-12-31 08:00", "2027-01-31 08:00"),  # across the year
        ("2026-02-28 10:00", "2026-03-28 10:00"),  # not "end of month to end of month"
    ],
)
def test_due_is_one_calendar_month_later(received, due):
    assert deadlines.due_date(at(received)) == at(due)


def test_an_extension_adds_up_to_two_months_to_the_first():
    received = at("2027-12-31 10:00")
    assert deadlines.extended_due_date(received, 1) == at("2028-02-29 10:00")
    assert deadlines.extended_due_date(received, 2) == at("2028-03-31 10:00")
    for months in (0, 3):
        with pytest.raises(ValueError):
            deadlines.extended_due_date(received, months)


def test_an_extension_is_allowed_once_and_only_before_the_first_due_date():
    received = at("2026-01-31 12:00")
    due = deadlines.due_date(received)
    kwargs = {"received_at": received, "due_at": due}
    assert deadlines.can_extend(**kwargs, extended_at=None, now=at("2026-02-27 12:00")) is None
    late = deadlines.can_extend(**kwargs, extended_at=None, now=at("2026-02-28 12:00"))
    assert "before the first due date" in late
    twice = deadlines.can_extend(
        **kwargs, extended_at=at("2026-02-01 00:00"), now=at("2026-02-02 00:00")
    )
    assert "one extension" in twice
