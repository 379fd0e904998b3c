"""Batch accounting: a batch ends exactly once, when its last job does, and is announced.

:meth:`workers.outcomes.Outcomes.announce_job` calls :func:`job_ended` for every job of a
batch; the API's cancel and the reconciler call :func:`close`. Ending a batch is one
conditional update (``workers/batch_store.close_if_done``); the one caller that wins it
attaches the output and error files and announces ``batch.completed`` or ``batch.canceled``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from schemas.batches import BatchPublic
from schemas.tables import Batch, Job
from workers import batch_store

if TYPE_CHECKING:
    from workers.outcomes import Outcomes

log = structlog.get_logger("switchyard.batches")
# The webhook event of each final status (OpenAI's `cancelled`, the event `batch.canceled`).
EVENT_OF_STATUS = {
    "completed": "completed",
    "failed": "failed",
    "cancelled": "canceled",
    "expired": "expired",
}
REPAIR_LIMIT = 100


def job_ended(outcomes: Outcomes, job: Job) -> None:
    """A job of a batch reached a final state: end its batch if it was the last open one."""
    if job.batch_id is not None:
        close(outcomes, job.batch_id)


def close(outcomes: Outcomes, batch_id: str) -> str | None:
    """End the batch if no job of it is open, and announce it; the new status, or None."""
    with outcomes.engine.begin() as connection:
        status = batch_store.close_if_done(connection, batch_id)
        if status is None:
            return None
        batch = _load(connection, batch_id)
        by_status, _, _ = batch_store.job_counts(connection, batch_id)
        errors = by_status.get("failed", 0) + by_status.get("canceled", 0) + len(batch.invalid_lines or [])
        batch_store.attach_files(connection, batch, has_errors=errors > 0)
    announce(outcomes, batch_id)
    return status


def fail(outcomes: Outcomes, batch_id: str) -> None:
    """A batch that failed at once (every line invalid and skipped): its error file, its event."""
    with outcomes.engine.begin() as connection:
        batch_store.attach_files(connection, _load(connection, batch_id), has_errors=True)
    announce(outcomes, batch_id)


def announce(outcomes: Outcomes, batch_id: str) -> None:
    """Emit the batch's final event with its public object."""
    with Session(outcomes.engine) as session:
        batch = session.get(Batch, batch_id)
        assert batch is not None
        public = public_batch(outcomes.engine, batch)
    event = EVENT_OF_STATUS.get(public.status, public.status)
    log.info("batch_ended", batch=batch_id, tenant=batch.tenant_id, status=public.status)
    outcomes.announce_batch(batch.tenant_id, event, public.model_dump(mode="json"))


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


def expire_due(outcomes: Outcomes) -> int:
    """Expire batches whose completion window passed, as OpenAI does: queued lines are
    cancelled (``batch_expired``), running ones finish, then the batch is ``expired``."""
    expired = 0
    for batch_id in batch_store.past_window(outcomes.engine, REPAIR_LIMIT):
        with outcomes.engine.begin() as connection:
            if not batch_store.mark_expiring(connection, batch_id):
                continue
            batch_store.cancel_queued(connection, batch_id, "batch_expired")
        close(outcomes, batch_id)
        expired += 1
    return expired


def repair(outcomes: Outcomes) -> int:
    """End batches whose jobs all ended but that were left open (a crash between the two)."""
    ended = 0
    for batch_id in batch_store.unfinished_batches(outcomes.engine, REPAIR_LIMIT):
        ended += close(outcomes, batch_id) is not None
    return ended


def _load(connection: Connection, batch_id: str) -> Batch:
    with Session(bind=connection) as session:
        batch = session.get(Batch, batch_id)
        assert batch is not None
        session.expunge(batch)
        return batch
