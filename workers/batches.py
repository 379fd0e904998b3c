"""Batch accounting: a batch ends exactly once, when its last job does.

Ending a batch is one conditional update (``workers/batch_store.close_if_done``); the one
caller that wins it attaches the output and error files and gets the event that announces the
end (``batch.completed``, ``batch.canceled``, ...). This module announces nothing itself:
:class:`workers.outcomes.Outcomes` owns the flow (a job's end, then its batch's) and emits the
event. The reconciler's passes over batches are in ``workers/batch_sweeps.py``.
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from schemas.batches import BatchPublic
from schemas.tables import Batch
from workers import batch_store
from workers.event import Event

log = structlog.get_logger("switchyard.batches")
# The webhook event of each final status (OpenAI's `cancelled`, the event `batch.canceled`).
EVENT_OF_STATUS = {
    "completed": "completed",
    "failed": "failed",
    "cancelled": "canceled",
    "expired": "expired",
}


def close(engine: Engine, batch_id: str) -> Event | None:
    """End the batch if no job of it is open: the event that announces its end, or None."""
    with engine.begin() as connection:
        status = batch_store.close_if_done(connection, batch_id)
        if status is None:
            return None
        batch = _load(connection, batch_id)
        by_status, _, _ = batch_store.job_counts(connection, batch_id)
        errors = by_status.get("failed", 0) + by_status.get("canceled", 0) + len(batch.invalid_lines or [])
        batch_store.attach_files(connection, batch, has_errors=errors > 0)
    return ended(engine, batch_id)


def fail(engine: Engine, batch_id: str) -> Event:
    """A batch that failed at once (every line invalid and skipped): its error file, its event."""
    with engine.begin() as connection:
        batch_store.attach_files(connection, _load(connection, batch_id), has_errors=True)
    return ended(engine, batch_id)


def ended(engine: Engine, batch_id: str) -> Event:
    """The event of the batch's end, with its public object."""
    with Session(engine) as session:
        batch = session.get(Batch, batch_id)
        assert batch is not None
        public = public_batch(engine, batch)
    kind = EVENT_OF_STATUS.get(public.status, public.status)
    log.info("batch_ended", batch=batch_id, tenant=batch.tenant_id, status=public.status)
    return Event(batch.tenant_id, f"batch.{kind}", public.model_dump(mode="json"))


def public_batch(engine: Engine, batch: Batch) -> BatchPublic:
    """The batch as the API shows it: counts per state, progress, ETA and cost so far."""
    with engine.connect() as connection:
        by_status, cost, last_finished = batch_store.job_counts(connection, batch.id)
    counts = batch_store.counts_of(by_status, len(batch.invalid_lines or []))
    return BatchPublic.from_row(batch, counts, cost, _eta_s(batch, by_status, last_finished))


def _eta_s(batch: Batch, by_status: dict[str, int], last_finished: Any) -> float | None:
    """Seconds to finish the open jobs at the rate jobs finished so far; None before any did."""
    open_jobs = by_status.get("queued", 0) + by_status.get("running", 0)
    if open_jobs == 0:
        return 0.0
    done = sum(n for status, n in by_status.items() if status not in batch_store.OPEN_STATUSES)
    started = batch.in_progress_at or batch.created_at
    if not done or last_finished is None or last_finished <= started:
        return None
    rate = done / (last_finished - started).total_seconds()
    return round(open_jobs / rate, 1)


def _load(connection: Connection, batch_id: str) -> Batch:
    with Session(bind=connection) as session:
        batch = session.get(Batch, batch_id)
        assert batch is not None
        session.expunge(batch)
        return batch
