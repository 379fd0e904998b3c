"""When a known query runs: its off-peak window and its next refresh (docs/caching.md).

Windows and cron expressions are read in the query's IANA time zone. A window is
``[start, end)`` in local time; it may wrap midnight (``22:00``-``04:00``), and ``start == end``
means the whole day. The next refresh is never later than ``(1 - refresh_margin)`` of the TTL
after the run, so a precomputed answer is replaced before it expires.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from schemas.errors import InvalidSchedule

HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
CRON_ALIASES = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})


def minutes_of(hhmm: str) -> int:
    """``"HH:MM"`` as minutes after midnight."""
    match = HHMM.fullmatch(hhmm)
    if match is None:
        raise ValueError(f"not an HH:MM time: {hhmm!r}")
    return int(match[1]) * 60 + int(match[2])


def in_window(now: datetime, start: str, end: str, timezone: str) -> bool:
    """Whether ``now`` is inside the local window ``[start, end)``; a window may wrap midnight."""
    local = now.astimezone(ZoneInfo(timezone))
    minute = local.hour * 60 + local.minute
    first, last = minutes_of(start), minutes_of(end)
    if first == last:
        return True
    if first < last:
        return first <= minute < last
    return minute >= first or minute < last


def next_refresh(
    now: datetime,
    *,
    every_s: int | None,
    cron: str | None,
    ttl_s: int,
    timezone: str,
    refresh_margin: float,
) -> datetime:
    """When to run again after a run at ``now`` (UTC): the period or the next cron time, but
    no later than when ``refresh_margin`` of the TTL is left."""
    latest = now + timedelta(seconds=ttl_s * (1 - refresh_margin))
    if every_s is not None:
        return min(now + timedelta(seconds=every_s), latest)
    assert cron is not None, "a known query has every_s or cron"
    local = now.astimezone(ZoneInfo(timezone))
    following: datetime = croniter(cron, local).get_next(datetime)
    return min(following.astimezone(UTC), latest)


def check_timezone(name: str) -> None:
    """An IANA time zone name, or ``invalid_schedule``."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidSchedule(
            f"Unknown time zone {name!r}; use an IANA name such as 'Europe/Paris' or 'UTC'.",
            param="timezone",
        ) from exc


def check_window(start: str, end: str) -> None:
    for param, value in (("window_start", start), ("window_end", end)):
        if HHMM.fullmatch(value) is None:
            raise InvalidSchedule(
                f"{param} {value[:20]!r} must be a 24-hour local time HH:MM, e.g. '01:00'.", param=param
            )


def check_cron(expression: str) -> None:
    """Five fields (minute hour day-of-month month day-of-week) or an alias such as ``@daily``,
    that fires at least once."""
    text = expression.strip()
    usage = "use five fields (minute hour day month weekday), e.g. '30 2 * * *', or '@daily'"
    if text not in CRON_ALIASES and len(text.split()) != 5:
        raise InvalidSchedule(f"Invalid cron {expression[:120]!r}: {usage}.", param="cron")
    try:
        croniter(text, datetime.now(UTC)).get_next(datetime)
    except (CroniterError, ValueError, KeyError) as exc:
        raise InvalidSchedule(f"Invalid cron {expression[:120]!r}: {exc}; {usage}.", param="cron") from exc
