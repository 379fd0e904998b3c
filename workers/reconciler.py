"""The reconciler: repairs what crashes leave behind, so every accepted job ends.

- ``queued`` rows with no message (a crash between commit and publish, or a long wait
  whose ``not_before`` has come) are published;
- ``queued`` rows whose message is long gone are published again: at once when Redis
  lost its data (workers/broker_watch.py), else ``republish_after_s`` after their publish;
- ``running`` rows whose lease expired (a dead worker) get their lost attempt recorded and
  priced, then go back to ``queued``, or fail with ``max_attempts`` once the attempts are
  used up (workers/lease_recovery.py);
- expired ``Idempotency-Key`` records are deleted;
- the fair-order backlog counters are reset from the queued rows;
- batches whose jobs all ended but that were left open (a crash in between) are ended, and
  batches past their completion window expire;
- jobs that ended without their webhook deliveries (a crash in between) get them
  (workers/webhooks/repair.py).
Duplicate messages are harmless: a claim succeeds only once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, delete, func, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from schemas.tables import IdempotencyRecord, Job, utcnow
from workers import batch_sweeps, store
from workers.broker_watch import republish_after_loss
from workers.db import session_scope
from workers.lease_recovery import recover_expired_leases
from workers.runtime import Runtime
from workers.webhooks import repair as webhook_repair

SWEEP_LIMIT = 1000


@dataclass
class SweepReport:
    """What one reconciler pass did."""

    published: int = 0
    republished_after_loss: int = 0
    requeued: int = 0
    dead_lettered: int = 0
    idempotency_purged: int = 0
    batches_closed: int = 0
    batches_expired: int = 0
    webhooks_repaired: int = 0


def reconcile(rt: Runtime) -> SweepReport:
    """One full pass; safe to run concurrently with workers and other reconcilers."""
    report = SweepReport()
    report.republished_after_loss = republish_after_loss(rt)
    report.requeued, report.dead_lettered = recover_expired_leases(rt)
    report.published = report.requeued + publish_unsent(rt)
    report.idempotency_purged = purge_idempotency_keys(rt)
    recount_backlogs(rt)
    report.batches_expired = batch_sweeps.expire_due(rt.outcomes)
    report.batches_closed = batch_sweeps.repair(rt.outcomes)
    report.webhooks_repaired = webhook_repair.resend_lost(rt.outcomes.webhooks)
    return report


def publish_unsent(rt: Runtime) -> int:
    """Publish queued rows that have no live message."""
    now = utcnow()
    settings = rt.settings
    due = or_(col(Job.not_before).is_(None), col(Job.not_before) <= now)
    never_sent = and_(
        col(Job.published_at).is_(None),
        col(Job.updated_at) < now - timedelta(seconds=settings.orphan_grace_s),
    )
    lost = col(Job.published_at) < now - timedelta(seconds=settings.republish_after_s)
    with Session(rt.engine) as session:
        rows = session.exec(
            select(Job.id, Job.tier, Job.priority, Job.tenant_id)
            .where(col(Job.status) == "queued", due, or_(never_sent, lost))
            .limit(SWEEP_LIMIT)
        ).all()
    for job_id, tier, priority, tenant_id in rows:
        rt.dispatcher.publish(job_id, tier, priority, tenant_id)
    if rows:
        store.mark_published(rt.engine, [row[0] for row in rows])
    return len(rows)


def recount_backlogs(rt: Runtime) -> None:
    """Reset the fair-order backlog counters from the queued rows, repairing any drift."""
    jobs = store.JOBS.c
    with Session(rt.engine) as session:
        rows = session.execute(
            sa_select(jobs.tier, jobs.tenant_id, func.count())
            .where(jobs.status == "queued")
            .group_by(jobs.tier, jobs.tenant_id)
        ).all()
    rt.dispatcher.reset_backlogs(list(rt.settings.tiers), {(tier, tenant): n for tier, tenant, n in rows})


def purge_idempotency_keys(rt: Runtime) -> int:
    """Delete idempotency records past their expiry."""
    with session_scope(rt.engine) as session:
        result = session.execute(
            delete(IdempotencyRecord).where(col(IdempotencyRecord.expires_at) < utcnow())
        )
    return int(result.rowcount)  # type: ignore[attr-defined]
