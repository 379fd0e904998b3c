"""A budget's period: the day or month, in the tenant's time zone, that holds a moment.

A period starts at local midnight (of the day, or of the month's first day) and ends at the
next; both bounds are returned in UTC. Time zones come from the IANA database (``zoneinfo``),
so daylight-saving days are 23 or 25 hours long, as the tenant's clock says.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PERIODS = ("day", "month")


@dataclass(frozen=True)
class Period:
    """One day or month of a budget: its UTC bounds and its label (``2026-12-07`` or ``2026-12``)."""

    start: datetime
    end: datetime
    label: str

    def seconds_left(self, now: datetime) -> float:
        """Seconds from ``now`` until the period resets."""
        return max(0.0, (self.end - now).total_seconds())


def zone_of(name: str | None) -> ZoneInfo:
    """The IANA zone ``name`` (UTC when empty); ValueError for an unknown one."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def period_at(kind: str, zone_name: str | None, now: datetime) -> Period:
    """The ``kind`` (day or month) period of the zone that holds ``now`` (timezone-aware)."""
    zone = zone_of(zone_name)
    local = now.astimezone(zone).date()
    if kind == "day":
        first, following = local, local + timedelta(days=1)
        label = local.isoformat()
    elif kind == "month":
        first = local.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        label = first.isoformat()[:7]
    else:
        raise ValueError(f"unknown budget period {kind!r}")
    return Period(_midnight(first, zone), _midnight(following, zone), label)


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
