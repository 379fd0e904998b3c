"""The one place final states are announced, whichever path ended a job or a batch.

The worker (succeeded, failed), the reconciler (dead letter) and the API (canceled) call
:meth:`Outcomes.announce_job`; batch accounting calls :meth:`Outcomes.announce_batch` when a
batch ends. Both go through :meth:`Outcomes.emit`, where each consumer of events (the
long-poll wake-up, the tenant event stream, webhook deliveries) is plugged in once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from redis import Redis
from redis.client import Pipeline
from sqlalchemy.engine import Engine

from schemas.jobs import JobPublic
from schemas.settings import Settings
from schemas.tables import Job, utcnow
from workers import batches
from workers.event_log import queue_event
from workers.events import publish_job_event
from workers.ids import new_id
from workers.keys import RedisKeys
from workers.webhooks.emitter import WebhookEmitter


@dataclass(frozen=True)
class Event:
    """Something a tenant may be told about: ``job.succeeded``, ``batch.completed``, ..."""

    tenant_id: str
    type: str
    data: dict[str, Any]
    id: str = field(default_factory=lambda: new_id("evt"))
    timestamp: datetime = field(default_factory=utcnow)
    job_id: str | None = None  # the job of a job.* event


def job_event(job: Job, public: dict[str, Any]) -> Event:
    """The event of a job's final state, ``public`` being the public job.

    Its id and time come from the job, so telling the same end twice (the reconciler's webhook
    repair after a crash, workers/webhooks/repair.py) makes the same deliveries, and their
    dedupe key drops the second copy. A job ends once, so one id per job is enough.
    """
    when = job.finished_at or utcnow()
    kind = f"job.{job.status}"
    return Event(job.tenant_id, kind, public, id=f"evt_{job.id}", timestamp=when, job_id=job.id)


@dataclass
class Outcomes:
    """Announces final states; built once per process from its settings, engine and Redis."""

    settings: Settings
    engine: Engine
    redis: Redis
    keys: RedisKeys

    @cached_property
    def webhooks(self) -> WebhookEmitter:
        """Signed webhook deliveries of this process's events (workers/webhooks/)."""
        return WebhookEmitter(self.settings, self.engine, self.redis, self.keys)

    def announce_job(self, job: Job, along: Callable[[Pipeline], object] | None = None) -> None:
        """Tell everyone who waits on this job that it reached ``job.status``.

        ``along`` may queue the caller's own commands (a worker gives back the tenant's
        running-jobs slot): they go first, in the same round trip.
        """
        public = JobPublic.from_row(job).model_dump(mode="json")  # once, for every consumer
        # The wake-up carries the finished job, so a waiting API answers without reading the row.
        # It goes in the event log's round trip.
        pipe = self.redis.pipeline(transaction=False)
        if along is not None:
            along(pipe)
        publish_job_event(pipe, self.keys, job.id, job.tenant_id, job.status, job=public)
        self.emit(job_event(job, public), pipe)
        batches.job_ended(self, job)  # the batch ends with its last job (workers/batches.py)

    def announce_batch(self, tenant_id: str, status: str, batch: dict[str, Any]) -> None:
        """Tell the tenant a batch ended: ``batch.completed``, ``batch.failed`` or ``batch.canceled``."""
        self.emit(Event(tenant_id, f"batch.{status}", batch))

    def emit(self, event: Event, pipe: Pipeline | None = None) -> None:
        """Hand one event to every consumer of events; ``pipe`` may hold the caller's own
        commands. One round trip carries them, the event log's and the webhook endpoint lookup.

        A plain pipeline, not MULTI: Redis runs one connection's commands in order anyway, so
        readers woken by the notice find the entry, and MULTI would add a reply per command.
        """
        pipe = pipe if pipe is not None else self.redis.pipeline(transaction=False)
        queue_event(pipe, self.keys, self.settings.streaming, event)  # GET /v1/events
        endpoints = self.webhooks.queue_lookup(pipe, event.tenant_id)
        replies = pipe.execute()
        self.webhooks.emit(event, replies[endpoints])  # signed webhooks to endpoints and callback URLs
