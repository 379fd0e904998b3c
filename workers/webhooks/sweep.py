"""Beat's sweep of due webhook retries (they are scheduled from the database, not the broker)."""

from __future__ import annotations

from schemas.tables import utcnow
from workers.webhooks import deliveries
from workers.webhooks.emitter import WebhookEmitter, publish_attempt


def publish_due(webhooks: WebhookEmitter) -> int:
    """Publish an attempt for every pending delivery whose next attempt is due; how many."""
    due = deliveries.take_due(webhooks.engine, utcnow(), webhooks.settings.webhooks.claim_s)
    for delivery_id, attempts in due:
        publish_attempt(webhooks.celery, webhooks.keys, delivery_id, attempts)
    return len(due)
