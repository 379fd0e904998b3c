"""Every state change of a provider batch row, and its member jobs, as conditional updates.

A provider batch goes open -> sending -> submitted -> merging -> done. Each step is an
``UPDATE ... WHERE status = <expected>``, so two beat passes never take the same step twice;
a step a crash left half done is taken up again once its row is ``resend_after_s`` old.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, insert, or_, select, update
from sqlalchemy.engine import Engine

from schemas.settings import ProviderBatchSettings
from schemas.tables import Job, ProviderBatch, utcnow
from workers.ids import new_id
from workers.store import COLUMNS, JOBS

BATCHES: Table = ProviderBatch.__table__  # type: ignore[attr-defined]


def join_open_batch(
    connection: Connection, provider: str, model: str, size: int, limits: ProviderBatchSettings
) -> str:
    """Count one line of ``size`` bytes into the model's open batch, opening one if none has room."""
    now = utcnow()
    room = (
        BATCHES.c.status == "open",
        BATCHES.c.provider == provider,
        BATCHES.c.model == model,
        BATCHES.c.lines < limits.max_lines,
        BATCHES.c.bytes + size <= limits.max_bytes,
    )
    # The conditions are repeated on the outer UPDATE: PostgreSQL re-checks them on the row
    # after waiting for a concurrent joiner, so a batch never passes its limits.
    oldest = select(BATCHES.c.id).where(*room).order_by(BATCHES.c.created_at).limit(1).scalar_subquery()
    joined = connection.execute(
        update(BATCHES)
        .where(BATCHES.c.id == oldest, *room)
        .values(lines=BATCHES.c.lines + 1, bytes=BATCHES.c.bytes + size, updated_at=now)
        .returning(BATCHES.c.id)
    ).first()
    if joined is not None:
        return str(joined[0])
    batch_id = new_id("pbat")
    connection.execute(
        insert(BATCHES).values(
            id=batch_id,
            provider=provider,
            model=model,
            status="open",
            lines=1,
            bytes=size,
            send_attempts=0,
            created_at=now,
            updated_at=now,
        )
    )
    return batch_id


def due_to_send(engine: Engine, limits: ProviderBatchSettings, line_room: int) -> list[str]:
    """Open batches that are full (no room for another ``line_room``-byte line) or old enough."""
    now = utcnow()
    full = or_(
        BATCHES.c.lines >= limits.max_lines,
        BATCHES.c.bytes > limits.max_bytes - line_room,
        BATCHES.c.created_at <= now - timedelta(seconds=limits.max_wait_s),
    )
    query = select(BATCHES.c.id).where(BATCHES.c.status == "open", full).order_by(BATCHES.c.created_at)
    with engine.connect() as connection:
        return [str(row[0]) for row in connection.execute(query)]


def stale(engine: Engine, status: str, older_than_s: float) -> list[str]:
    """Batches left in ``status`` longer than ``older_than_s`` (a crash mid-step)."""
    before = utcnow() - timedelta(seconds=older_than_s)
    query = select(BATCHES.c.id).where(BATCHES.c.status == status, BATCHES.c.updated_at < before)
    with engine.connect() as connection:
        return [str(row[0]) for row in connection.execute(query)]


def in_status(engine: Engine, status: str) -> list[ProviderBatch]:
    """Every batch in ``status``, oldest first."""
    query = select(BATCHES).where(BATCHES.c.status == status).order_by(BATCHES.c.created_at)
    with engine.connect() as connection:
        return [ProviderBatch.model_construct(**row) for row in connection.execute(query).mappings()]


def take(
    engine: Engine,
    batch_id: str,
    expected: str,
    status: str,
    *,
    stale_before: datetime | None = None,
    **values: Any,
) -> ProviderBatch | None:
    """Move a batch from ``expected`` to ``status`` (only if untouched since ``stale_before``)."""
    conditions = [BATCHES.c.id == batch_id, BATCHES.c.status == expected]
    if stale_before is not None:
        conditions.append(BATCHES.c.updated_at < stale_before)
    statement = update(BATCHES).where(*conditions).values(status=status, updated_at=utcnow(), **values)
    with engine.begin() as connection:
        row = connection.execute(statement.returning(*BATCHES.c)).mappings().first()
    return ProviderBatch.model_construct(**row) if row is not None else None


def members(engine: Engine, batch_id: str) -> list[Job]:
    """The jobs still waiting in the batch: running under the batch's own lease token."""
    query = (
        select(JOBS)
        .where(
            JOBS.c.provider_batch_id == batch_id, JOBS.c.lease_token == batch_id, JOBS.c.status == "running"
        )
        .order_by(JOBS.c.created_at, JOBS.c.id)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
    return [Job.model_construct(**{name: row[column] for name, column in COLUMNS.items()}) for row in rows]


def park_job(connection: Connection, job: Job, batch_id: str, lease_s: int, **values: Any) -> bool:
    """Hand a claimed job to the batch: its lease token becomes the batch id, its lease long."""
    now = utcnow()
    statement = (
        update(JOBS)
        .where(JOBS.c.id == job.id, JOBS.c.status == "running", JOBS.c.lease_token == job.lease_token)
        .values(
            provider_batch_id=batch_id,
            lease_token=batch_id,
            lease_expires_at=now + timedelta(seconds=lease_s),
            updated_at=now,
            **values,
        )
    )
    return bool(connection.execute(statement).rowcount == 1)
