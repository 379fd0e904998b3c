"""Delivery rows: insert, claim an attempt, record its outcome, find due retries, redeliver.

Every change is a conditional UPDATE on ``(status, attempts)``, so two workers holding the
same attempt (a duplicate message, a sweep racing a slow attempt) cannot both send it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from schemas.tables import WebhookDelivery, WebhookEndpoint, utcnow
from workers.ids import new_id

TABLE = WebhookDelivery.__table__  # type: ignore[attr-defined]
ENDPOINTS = WebhookEndpoint.__table__  # type: ignore[attr-defined]
PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"


@dataclass(frozen=True)
class Claimed:
    """A delivery whose next attempt this worker holds, and its endpoint (None: callback URL
    or deleted)."""

    delivery: WebhookDelivery
    endpoint: WebhookEndpoint | None


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt came to."""

    status_code: int | None
    error: str | None
    response_ms: float | None


def insert_new(engine: Engine, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Insert the rows, skipping any whose ``dedupe_key`` exists; the rows actually inserted."""
    if not rows:
        return []
    with engine.begin() as connection:
        inserted = {row.id for row in connection.execute(_insert_statement(engine.dialect.name), rows)}
    return [row for row in rows if row["id"] in inserted]


@cache
def _insert_statement(dialect: str) -> Any:
    module: Any = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(TABLE).on_conflict_do_nothing(index_elements=["dedupe_key"])
    return statement.returning(TABLE.c.id)


# The attempt's statements are built once (the hot path; see docs/architecture.md "Hot paths").
CLAIM = (
    update(TABLE)
    .where(TABLE.c.id == bindparam("d_id"), TABLE.c.status == PENDING, TABLE.c.attempts == bindparam("seen"))
    .values(
        attempts=bindparam("taken"),
        next_attempt_at=bindparam("held_until"),
        last_attempt_at=bindparam("now"),
        updated_at=bindparam("now"),
    )
    .returning(*TABLE.c)
)
ENDPOINT = select(ENDPOINTS).where(ENDPOINTS.c.id == bindparam("e_id"))
RECORD = (
    update(TABLE)
    .where(
        TABLE.c.id == bindparam("d_id"), TABLE.c.attempts == bindparam("attempt"), TABLE.c.status == PENDING
    )
    .values(
        status=bindparam("new_status"),
        next_attempt_at=bindparam("next_at"),
        last_status_code=bindparam("code"),
        last_error=bindparam("error"),
        last_response_ms=bindparam("ms"),
        updated_at=bindparam("now"),
    )
)


def claim(engine: Engine, delivery_id: str, seen_attempts: int, hold_s: float) -> Claimed | None:
    """Take attempt ``seen_attempts + 1`` with its endpoint, in one transaction; None if someone
    else took it or the delivery ended."""
    now = utcnow()
    values = {
        "d_id": delivery_id,
        "seen": seen_attempts,
        "taken": seen_attempts + 1,
        "held_until": now + timedelta(seconds=hold_s),
        "now": now,
    }
    with engine.begin() as connection:
        row = connection.execute(CLAIM, values).one_or_none()
        if row is None:
            return None
        delivery = WebhookDelivery(**row._mapping)
        endpoint = None
        if delivery.endpoint_id is not None:
            found = connection.execute(ENDPOINT, {"e_id": delivery.endpoint_id}).one_or_none()
            endpoint = WebhookEndpoint(**found._mapping) if found is not None else None
    return Claimed(delivery, endpoint)


def record(
    engine: Engine,
    delivery_id: str,
    attempt: int,
    result: AttemptResult,
    next_at: datetime | None,
    status: str,
) -> None:
    """Store an attempt's outcome: still ``pending`` until ``next_at``, ``succeeded`` or ``failed``."""
    values = {
        "d_id": delivery_id,
        "attempt": attempt,
        "new_status": status,
        "next_at": next_at if status == PENDING else None,
        "code": result.status_code,
        "error": (result.error or "")[:500] or None,
        "ms": result.response_ms,
        "now": utcnow(),
    }
    with engine.begin() as connection:
        connection.execute(RECORD, values)


def take_due(engine: Engine, now: datetime, hold_s: float, limit: int = 500) -> list[tuple[str, int]]:
    """(id, attempts) of pending deliveries due by ``now``, held for ``hold_s`` so the next sweep
    does not publish them again while their attempt waits in the queue."""
    due = (
        select(TABLE.c.id)
        .where(TABLE.c.status == PENDING, TABLE.c.next_attempt_at <= now)
        .order_by(TABLE.c.next_attempt_at)
        .limit(limit)
    )
    statement = (
        update(TABLE)
        .where(
            TABLE.c.id.in_(due.scalar_subquery()), TABLE.c.status == PENDING, TABLE.c.next_attempt_at <= now
        )
        .values(next_attempt_at=now + timedelta(seconds=hold_s))
        .returning(TABLE.c.id, TABLE.c.attempts)
    )
    with engine.begin() as connection:
        return [(row.id, row.attempts) for row in connection.execute(statement)]


def reopen(engine: Engine, conditions: list[Any], hold_s: float, limit: int) -> list[str]:
    """Put ended deliveries matching ``conditions`` back to pending with a fresh schedule."""
    now = utcnow()
    chosen = select(TABLE.c.id).where(TABLE.c.status != PENDING, *conditions).limit(limit)
    statement = (
        update(TABLE)
        .where(TABLE.c.id.in_(chosen.scalar_subquery()), TABLE.c.status != PENDING)
        .values(status=PENDING, attempts=0, next_attempt_at=now + timedelta(seconds=hold_s), updated_at=now)
        .returning(TABLE.c.id)
    )
    with engine.begin() as connection:
        return [row.id for row in connection.execute(statement)]


def new_row(
    event_id: str,
    event_type: str,
    tenant_id: str,
    endpoint_id: str | None,
    url: str,
    body: str,
    hold_s: float,
    job_id: str | None = None,
) -> dict[str, Any]:
    """A pending delivery's column values; held ``hold_s`` while its first attempt is published."""
    now = utcnow()
    return {
        "id": new_id("whd"),
        "tenant_id": tenant_id,
        "event_id": event_id,
        "job_id": job_id,
        "event_type": event_type,
        "endpoint_id": endpoint_id,
        "url": url,
        "dedupe_key": f"{event_id}:{endpoint_id or 'callback'}",
        "body": body,
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": now + timedelta(seconds=hold_s),
        "created_at": now,
        "updated_at": now,
    }
