"""When the next attempt of a delivery is due: the retry schedule, jitter and Retry-After."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from schemas.settings import WebhookSettings


def next_delay(settings: WebhookSettings, attempts_made: int, retry_after_s: float | None) -> float | None:
    """Seconds until the next attempt after ``attempts_made`` attempts; None once the schedule
    is used up (the delivery goes to the dead letter). A Retry-After is a floor."""
    schedule = settings.retry_schedule_s
    if attempts_made >= len(schedule):
        return None
    base = schedule[attempts_made]
    delay = base * (1 + random.uniform(-settings.jitter, settings.jitter))
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, max(schedule)))
    return delay


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date; None if absent or bad."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())
