"""The per-call log of ``GET /v1/calls``: provider calls and cache answers, newest first.

Two sources, read page by page and merged:
- provider calls: the ``usage`` rows (one per call, retries and failures included) joined to
  their jobs by primary key; the tenant and time come from ``ix_usage_tenant_created``;
- cache answers: jobs whose ``cache.hit`` is set (no call, so no usage row), from
  ``ix_jobs_tenant_created``. When the calls filled a page, the cache answers are read only
  back to the oldest call of it, so neither scan goes past what the page shows.

Order: ``created_at`` descending; at one instant provider calls before cache answers, each by
id descending. A cursor is the id of the last row shown (``call_<n>`` or ``hit_<job id>``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, and_, false, or_, select, true
from sqlalchemy.engine import Connection, Engine

from schemas.calls import CallRecord
from schemas.errors import InvalidCursor, InvalidRequest
from schemas.tables import Usage
from workers.store import JOBS

USAGE = Usage.__table__  # type: ignore[attr-defined]
CALL_PREFIX, HIT_PREFIX = "call_", "hit_"
_CALL_ID = re.compile(r"call_([0-9]{1,18})")
_HIT_ID = re.compile(r"hit_([A-Za-z0-9_-]{1,40})")
_HIT = JOBS.c.cache["hit"].as_string()
CACHE_KINDS = ("exact", "semantic")


@dataclass(frozen=True)
class CallFilter:
    """What a page shows: one tenant's calls in ``[start, end)``, narrowed by the others."""

    tenant_id: str
    start: datetime | None = None
    end: datetime | None = None
    tier: str | None = None
    model: str | None = None
    provider: str | None = None
    status: str | None = None  # ok, error, or an error code
    job_id: str | None = None
    cache: str | None = None  # exact, semantic, or none (provider calls only)


def checked(where: CallFilter) -> CallFilter:
    """``where`` with its times in UTC (a time without a zone is UTC); 400 when ``from`` is not
    before ``to``."""
    start, end = _utc(where.start, "from"), _utc(where.end, "to")
    if start is not None and end is not None and start >= end:
        raise InvalidRequest(
            f"from ({start.isoformat()}) must be before to ({end.isoformat()}).", param="from"
        )
    return replace(where, start=start, end=end)


def _utc(at: datetime | None, param: str) -> datetime | None:
    if at is None:
        return None
    try:
        return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    except OverflowError as exc:  # e.g. 0001-01-01T00:00+05:00 is before year 1 in UTC
        raise InvalidRequest(f"{param} {at.isoformat()} is out of range.", param=param) from exc


@dataclass(frozen=True)
class Position:
    """Where a page continues: a row's time, its source (1: a call, 0: a cache answer) and id."""

    at: datetime
    source: int
    key: Any

    def sort_key(self) -> tuple[datetime, int]:
        # Not the id: rows of one source and instant keep the database's order (its collation
        # is the one the cursor's `id <` compares with); the sort is stable.
        return (self.at, self.source)


def list_calls(
    engine: Engine, where: CallFilter, limit: int, cursor: str | None
) -> tuple[list[CallRecord], bool, str | None]:
    """A page of at most ``limit`` calls, whether more follow, and the next page's cursor."""
    with engine.connect() as connection:
        after = find_position(connection, where.tenant_id, cursor)
        calls = (
            _fetch(connection, _calls_select(where, after, limit), _call_record)
            if _wants_calls(where)
            else []
        )
        floor = calls[-1][0].at if len(calls) > limit else None
        hits = (
            _fetch(connection, _hits_select(where, after, limit, floor), _hit_record)
            if _wants_hits(where)
            else []
        )
    merged = sorted([*calls, *hits], key=lambda pair: pair[0].sort_key(), reverse=True)
    page = [record for _, record in merged[:limit]]
    has_more = len(merged) > limit
    return page, has_more, (page[-1].id if has_more else None)


def find_position(connection: Connection, tenant_id: str, cursor: str | None) -> Position | None:
    """The tenant's row a cursor names, or :class:`InvalidCursor`."""
    if cursor is None:
        return None
    position = None
    if match := _CALL_ID.fullmatch(cursor):
        usage_id = int(match.group(1))
        query = select(USAGE.c.created_at).where(USAGE.c.id == usage_id, USAGE.c.tenant_id == tenant_id)
        at = connection.execute(query).scalar()
        position = None if at is None else Position(at, 1, usage_id)
    elif match := _HIT_ID.fullmatch(cursor):
        job_id = match.group(1)
        query = select(JOBS.c.created_at).where(
            JOBS.c.id == job_id, JOBS.c.tenant_id == tenant_id, _HIT.in_(CACHE_KINDS)
        )
        at = connection.execute(query).scalar()
        position = None if at is None else Position(at, 0, job_id)
    if position is None:
        raise InvalidCursor(
            f"cursor {cursor[:80]!r} is not a call of one of your pages; start again without it, "
            "or pass the value the previous page gave.",
            param="cursor",
        )
    return position


def _wants_calls(where: CallFilter) -> bool:
    return where.cache in (None, "none")


def _wants_hits(where: CallFilter) -> bool:
    # A cache answer is a success: a filter on errors never shows one.
    return where.cache != "none" and where.status in (None, "ok")


def _calls_select(where: CallFilter, after: Position | None, limit: int) -> Select[Any]:
    query = (
        select(USAGE, JOBS.c.priority)
        .select_from(USAGE.join(JOBS, JOBS.c.id == USAGE.c.job_id))
        .where(USAGE.c.tenant_id == where.tenant_id)
    )
    query = query.where(*_common(where, USAGE.c.created_at, USAGE.c, USAGE.c.job_id))
    if where.status == "error":
        query = query.where(USAGE.c.outcome != "ok")
    elif where.status is not None:
        query = query.where(USAGE.c.outcome == where.status)
    if after is not None:
        same_instant = USAGE.c.id < after.key if after.source == 1 else false()
        query = query.where(
            or_(USAGE.c.created_at < after.at, and_(USAGE.c.created_at == after.at, same_instant))
        )
    return query.order_by(USAGE.c.created_at.desc(), USAGE.c.id.desc()).limit(limit + 1)


def _hits_select(
    where: CallFilter, after: Position | None, limit: int, floor: datetime | None
) -> Select[Any]:
    query = select(JOBS).where(JOBS.c.tenant_id == where.tenant_id, _HIT.in_(CACHE_KINDS))
    query = query.where(*_common(where, JOBS.c.created_at, JOBS.c, JOBS.c.id))
    if where.cache in ("exact", "semantic"):
        query = query.where(_HIT.in_([where.cache]))
    if after is not None:
        same_instant = true() if after.source == 1 else JOBS.c.id < after.key
        query = query.where(
            or_(JOBS.c.created_at < after.at, and_(JOBS.c.created_at == after.at, same_instant))
        )
    if floor is not None:
        query = query.where(JOBS.c.created_at >= floor)
    return query.order_by(JOBS.c.created_at.desc(), JOBS.c.id.desc()).limit(limit + 1)


def _common(where: CallFilter, at: Any, columns: Any, job: Any) -> list[Any]:
    """The filters both sources share: time, tier, model, provider, job."""
    conditions = []
    if where.start is not None:
        conditions.append(at >= where.start)
    if where.end is not None:
        conditions.append(at < where.end)
    for name in ("tier", "model", "provider"):
        value = getattr(where, name)
        if value is not None:
            conditions.append(columns[name] == value)
    if where.job_id is not None:
        conditions.append(job == where.job_id)
    return conditions


def _fetch(connection: Connection, query: Select[Any], build: Any) -> list[tuple[Position, CallRecord]]:
    return [build(row) for row in connection.execute(query).mappings()]


def _call_record(row: Any) -> tuple[Position, CallRecord]:
    ok = row["outcome"] == "ok"
    record = CallRecord(
        id=f"{CALL_PREFIX}{row['id']}",
        job_id=row["job_id"],
        attempt=row["attempt"],
        tier=row["tier"],
        model=row["model"],
        provider=row["provider"],
        priority=row["priority"],
        latency_ms=row["latency_ms"],
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        cost_usd=row["cost_usd"],
        cache=None,
        saved_usd=None,
        outcome="ok" if ok else "error",
        error_code=None if ok else row["outcome"],
        created_at=row["created_at"],
    )
    return Position(row["created_at"], 1, row["id"]), record


def _hit_record(row: Any) -> tuple[Position, CallRecord]:
    cache = row["cache"] or {}
    saved = cache.get("saved_usd")
    record = CallRecord(
        id=f"{HIT_PREFIX}{row['id']}",
        job_id=row["id"],
        attempt=row["attempts"],
        tier=row["tier"],
        model=row["model"],
        provider=row["provider"],
        priority=row["priority"],
        latency_ms=row["latency_ms"],
        prompt_tokens=0,
        completion_tokens=0,
        cost_usd=0.0,
        cache=cache.get("hit"),
        saved_usd=float(saved) if isinstance(saved, int | float) else None,
        outcome="ok",
        error_code=None,
        created_at=row["created_at"],
    )
    return Position(row["created_at"], 0, row["id"]), record
