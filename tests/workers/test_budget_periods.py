"""Budget periods in the tenant's time zone: days and months, daylight saving, unknown zones."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from workers.budgets.periods import period_at


def test_a_day_starts_at_local_midnight() -> None:
    # 03:30 UTC on Dec 7 is still Dec 6 in New York (UTC-5).
    period = period_at("day", "America/New_York", datetime(2026, 12, 7, 3, 30, tzinfo=UTC))
    assert period.label == "2026-12-06"
    assert period.start == datetime(2026, 12, 6, 5, 0, tzinfo=UTC)
    assert period.end == datetime(2026, 12, 7, 5, 0, tzinfo=UTC)


def test_a_daylight_saving_day_is_23_hours_long() -> None:
    period = period_at("day", "America/New_York", datetime(2026, 3, 8, 12, 0, tzinfo=UTC))
    assert (period.end - period.start).total_seconds() == 23 * 3600


def test_a_month_in_a_zone_ahead_of_utc_begins_the_day_before_in_utc() -> None:
    # 16:00 UTC on Dec 31 is already Jan 1 in Tokyo (UTC+9).
    period = period_at("month", "Asia/Tokyo", datetime(2026, 12, 31, 16, 0, tzinfo=UTC))
    assert period.label == "2027-01"
    assert period.start == datetime(2026, 12, 31, 15, 0, tzinfo=UTC)
    assert period.end == datetime(2027, 1, 31, 15, 0, tzinfo=UTC)
    assert period.seconds_left(datetime(2027, 1, 31, 14, 0, tzinfo=UTC)) == 3600


def test_utc_is_the_default_zone() -> None:
    period = period_at("month", None, datetime(2026, 2, 10, tzinfo=UTC))
    assert (period.start, period.end) == (datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))


def test_unknown_zone_or_period_is_refused() -> None:
    with pytest.raises(ValueError):
        period_at("day", "Mars/Olympus", datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError):
        period_at("week", "UTC", datetime(2026, 1, 1, tzinfo=UTC))
