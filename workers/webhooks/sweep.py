"""The per-process deliverer and beat's sweep of due retries (scheduled from the database)."""

from __future__ import annotations

import threading

from schemas.tables import utcnow
from workers.runtime import Runtime
from workers.webhooks import deliveries
from workers.webhooks.delivery import Deliverer
from workers.webhooks.emitter import publish_attempt
from workers.webhooks.transport import guarded_client

_deliverers: dict[int, Deliverer] = {}
_building = threading.Lock()


def deliverer_for(rt: Runtime) -> Deliverer:
    """This process's deliverer for ``rt``, with one pooled, guarded HTTP client."""
    key = id(rt)
    with _building:  # the webhook worker's threads start at once
        if key not in _deliverers:
            client = guarded_client(rt.settings.webhooks)
            _deliverers[key] = Deliverer(rt.settings, rt.engine, rt.redis, rt.keys, client)
        return _deliverers[key]


def publish_due(rt: Runtime) -> int:
    """Publish an attempt for every pending delivery whose next attempt is due; how many."""
    due = deliveries.take_due(rt.engine, utcnow(), rt.settings.webhooks.claim_s)
    for delivery_id, attempts in due:
        publish_attempt(rt.celery, rt.keys, delivery_id, attempts)
    return len(due)
