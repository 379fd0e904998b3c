"""From an event to delivery rows and their first attempt, cheaply, on the emitter's hot path.

A tenant with no endpoint and an event with no callback URL cost one Redis GET (the cached
endpoint list) and nothing else. Otherwise one INSERT of a row per target; then each first
attempt goes out at once, from a sender thread of this process (``first_attempt =
"in_process"``, see ``sender.py``) or as a Celery message to the webhook queue.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import structlog
from celery import Celery
from kombu.exceptions import KombuError
from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from schemas.settings import Settings
from workers.event import Event
from workers.keys import RedisKeys
from workers.webhooks import deliveries
from workers.webhooks.delivery import Deliverer
from workers.webhooks.endpoints import subscriptions
from workers.webhooks.payloads import event_body
from workers.webhooks.sender import FirstAttemptSender
from workers.webhooks.transport import guarded_client

log = structlog.get_logger("switchyard.webhooks")
DELIVER_TASK = "switchyard.deliver_webhook"


def publish_attempt(celery: Celery, keys: RedisKeys, delivery_id: str, attempts: int) -> None:
    """Queue the delivery's next attempt (the one after ``attempts``) on the webhook queue."""
    celery.send_task(DELIVER_TASK, args=[delivery_id, attempts], queue=keys.webhook_queue)


@dataclass
class WebhookEmitter:
    """Turns events into deliveries; one per process, inside ``Outcomes``.

    ``celery`` is the process's own app (the runtime's or the API's), which publishes first
    attempts to the webhook queue. The sender threads and the deliverer (an HTTP client, about
    0.1 s to build) are made on first use: most processes never send a webhook themselves.
    """

    settings: Settings
    engine: Engine
    redis: Redis
    keys: RedisKeys
    celery: Celery
    _sender: FirstAttemptSender | None = field(default=None, init=False, repr=False)
    _deliverer: Deliverer | None = field(default=None, init=False, repr=False)
    # A threads worker announces from many threads at once: one sender and one client each.
    _building: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def queue_lookup(self, pipe: Pipeline, tenant_id: str) -> int:
        """Queue the read of the tenant's cached endpoint list on the caller's ``pipe``, so
        :meth:`emit` needs no round trip of its own; the index of its reply."""
        pipe.get(self.keys.webhook_endpoints(tenant_id))
        return len(pipe) - 1

    def emit(self, event: Event, cached_endpoints: bytes | None = None) -> None:
        """Create the event's deliveries and send their first attempts; never raises on I/O.

        ``cached_endpoints`` is the reply of :meth:`queue_lookup`, when the caller made it.
        """
        try:
            rows = self._rows(event, cached_endpoints)
            for row in deliveries.insert_new(self.engine, rows):
                self._first_attempt(row["id"])
        except (SQLAlchemyError, RedisError, KombuError, OSError) as exc:
            # The job itself is final and stored; a lost webhook must not undo or retry it.
            log.error("webhook_emit_failed", event=event.id, type=event.type, error=str(exc))

    def _first_attempt(self, delivery_id: str) -> None:
        if self.settings.webhooks.first_attempt == "in_process" and self.sender.try_send(delivery_id):
            return
        publish_attempt(self.celery, self.keys, delivery_id, 0)

    @property
    def sender(self) -> FirstAttemptSender:
        """The threads that make first attempts in this process (``first_attempt = "in_process"``)."""
        with self._building:
            if self._sender is None:
                hooks = self.settings.webhooks
                self._sender = FirstAttemptSender(
                    lambda: self.deliverer, hooks.sender_threads, hooks.sender_backlog
                )
            return self._sender

    @property
    def deliverer(self) -> Deliverer:
        """This process's deliverer, with one pooled, guarded HTTP client."""
        with self._building:
            if self._deliverer is None:
                client = guarded_client(self.settings.webhooks)
                self._deliverer = Deliverer(self.settings, self.engine, self.redis, self.keys, client)
            return self._deliverer

    def _rows(self, event: Event, cached_endpoints: bytes | None) -> list[dict[str, Any]]:
        hooks = self.settings.webhooks
        targets: list[tuple[str | None, str]] = [
            (sub.endpoint_id, sub.url)
            for sub in subscriptions(
                self.engine, self.redis, self.keys, event.tenant_id, hooks.endpoint_cache_s, cached_endpoints
            )
            if sub.wants(event.type)
        ]
        callback_url = event.data.get("callback_url")
        if isinstance(callback_url, str) and callback_url:
            targets.append((None, callback_url))
        if not targets:
            return []
        body = event_body(event, self.settings)
        return [
            deliveries.new_row(
                event.id, event.type, event.tenant_id, endpoint_id, url, body, hooks.claim_s, event.job_id
            )
            for endpoint_id, url in targets
        ]
