"""The per-process deliverer and beat's sweep of due retries (scheduled from the database)."""

from __future__ import annotations

from schemas.tables import utcnow
from workers.runtime import Runtime
from workers.webhooks import deliveries
from workers.webhooks.delivery import Deliverer
from workers.webhooks.emitter import publish_attempt


def deliverer_for(rt: Runtime) -> Deliverer:
    """This process's deliverer: the webhook emitter's, so a process holds one HTTP client."""
    return rt.outcomes.webhooks.deliverer


def publish_due(rt: Runtime) -> int:
    """Publish an attempt for every pending delivery whose next attempt is due; how many."""
    due = deliveries.take_due(rt.engine, utcnow(), rt.settings.webhooks.claim_s)
    for delivery_id, attempts in due:
        publish_attempt(rt.celery, rt.keys, delivery_id, attempts)
    return len(due)
