"""What the API's submissions and the paths that end jobs record.

:func:`submission` counts a submission (or a batch's lines) as submitted, then accepted or
refused. A job's end is one ``jobs_ended`` count and one duration per job:

:func:`record_job_end` is called from ``Outcomes.announce_job``, which every final state of a
single job goes through (worker, API cache hit and cancel, reconciler dead letter);
:func:`record_bulk_cancel` from the one statement that cancels a batch's queued jobs, which
announces no job by itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from redis.exceptions import RedisError

from schemas.errors import ServiceUnavailable, SwitchyardError
from schemas.settings import Settings
from schemas.tables import Job, utcnow
from workers.metrics import definitions as m
from workers.metrics.labels import tier_label


def record_job_end(job: Job) -> None:
    """Count the job's end and observe its end-to-end time."""
    _ended(job.tier, job.priority, job.status, job.error_code, job.created_at, job.finished_at)


def record_rows_ended(rows: Iterable[Mapping[str, Any]]) -> None:
    """Count jobs inserted already ended (a batch's lines the exact cache answered): job rows."""
    for row in rows:
        _ended(
            row["tier"],
            row["priority"],
            row["status"],
            row.get("error_code"),
            row["created_at"],
            row.get("finished_at"),
        )


def record_bulk_cancel(rows: Iterable[tuple[str, str, datetime]], code: str) -> None:
    """Count jobs canceled together: each row is (tier, priority, created_at)."""
    now = utcnow()
    for tier, priority, created_at in rows:
        _ended(tier, priority, "canceled", code, created_at, now)


def _ended(
    tier: str,
    priority: str,
    status: str,
    code: str | None,
    created: datetime | None,
    finished: datetime | None,
) -> None:
    m.jobs_ended.labels(tier, priority, status, code or "").inc()
    if created is not None:
        seconds = ((finished or utcnow()) - _aware(created, finished)).total_seconds()
        m.job_duration.labels(tier, priority, status).observe(max(seconds, 0.0))


def _aware(moment: datetime, like: datetime | None) -> datetime:
    # SQLite gives naive datetimes back; both ends are UTC.
    reference = like or utcnow()
    if (moment.tzinfo is None) != (reference.tzinfo is None):
        return moment.replace(tzinfo=reference.tzinfo)
    return moment


@contextmanager
def submission(settings: Settings, tier: str | None, priority: str, lines: int = 1) -> Iterator[None]:
    """Count ``lines`` submissions to ``tier``: submitted now, then accepted, or refused with the
    error's code when the block raises one."""
    label = tier_label(settings, tier)
    m.jobs_submitted.labels(label, priority).inc(lines)
    try:
        yield
    except SwitchyardError as error:
        m.jobs_refused.labels(label, error.code).inc(lines)
        raise
    except RedisError:  # answered 503 by the API's error handler (api/errors.py)
        m.jobs_refused.labels(label, ServiceUnavailable.code).inc(lines)
        raise
    m.jobs_accepted.labels(label, priority).inc(lines)


def record_invalid_lines(settings: Settings, tier: str | None, codes: Iterable[str]) -> None:
    """Count a batch's invalid lines: submitted, and refused with each line's error code."""
    label = tier_label(settings, tier)
    for code in codes:
        m.jobs_submitted.labels(label, "batch").inc()
        m.jobs_refused.labels(label, code).inc()
