"""The reconciler's webhook repair: jobs that ended without their deliveries get them.

A job's final state is committed before its event is announced (workers/outcomes.py), so a
worker that dies in between, or a database error while the delivery rows are inserted, would
lose the job's webhooks. Each reconciler pass looks at the jobs that ended since its last pass
(at least ``webhooks.repair_after_s`` ago, so the normal path has had its turn), whose end was
announced one by one (not a batch line ended in bulk), and that have a webhook target: a
``callback_url``, or a tenant with an enabled endpoint. Those with no
delivery row are announced to the webhook emitter again. The event's id comes from the job
(``job_event``), so a delivery that does exist after all is dropped by its dedupe key, never
sent twice. The wake-up of long-polls and the event stream are not repaired: a long-poll reads
the row when its wait ends, and the event stream is best-effort (docs/streaming.md).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import exists, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from schemas.jobs import FINAL_STATUSES, JobPublic
from schemas.tables import Job, WebhookDelivery, WebhookEndpoint, utcnow
from workers.event import job_event
from workers.webhooks.emitter import WebhookEmitter

REPAIR_LIMIT = 1000


def resend_lost(webhooks: WebhookEmitter) -> int:
    """Announce to the webhook emitter each job that ended without deliveries; how many."""
    hooks = webhooks.settings.webhooks
    until = utcnow() - timedelta(seconds=hooks.repair_after_s)
    mark = webhooks.redis.get(webhooks.keys.webhook_repair_mark)
    since = (
        datetime.fromtimestamp(float(mark), UTC)
        if mark is not None
        else until - timedelta(seconds=hooks.repair_lookback_s)
    )
    if since >= until:
        return 0
    with Session(webhooks.engine) as session:
        lost = list(session.exec(_lost_jobs(since, until)))
    for job in lost:
        public = JobPublic.from_row(job).model_dump(mode="json")
        webhooks.emit(job_event(job, public))
    # A full page may leave more behind its last job: the next pass starts there.
    reached = lost[-1].finished_at if len(lost) == REPAIR_LIMIT and lost[-1].finished_at else until
    webhooks.redis.set(webhooks.keys.webhook_repair_mark, repr(reached.timestamp()))
    return len(lost)


def _lost_jobs(since: datetime, until: datetime) -> SelectOfScalar[Job]:
    enabled = col(WebhookEndpoint.enabled).is_(True)
    tenants_with_endpoints = sa_select(col(WebhookEndpoint.tenant_id)).where(enabled)
    delivered = exists().where(col(WebhookDelivery.job_id) == col(Job.id))
    return (
        select(Job)
        .where(
            col(Job.finished_at) >= since,
            col(Job.finished_at) < until,
            col(Job.status).in_(FINAL_STATUSES),
            # Batch lines ended in bulk (answered by the cache at submission, cancelled or expired
            # while queued) are announced by their batch's event, not one by one: only those a
            # worker ran had job events of their own.
            or_(col(Job.batch_id).is_(None), col(Job.started_at).is_not(None)),
            or_(col(Job.callback_url).is_not(None), col(Job.tenant_id).in_(tenants_with_endpoints)),
            ~delivered,
        )
        .order_by(col(Job.finished_at))
        .limit(REPAIR_LIMIT)
    )
