"""The one place final states are announced, whichever path ended a job or a batch.

The worker (succeeded, failed), the reconciler (dead letter) and the API (canceled) call
:meth:`Outcomes.announce_job`. Outcomes owns the whole flow: a job's end, then its batch's when
it was the batch's last open job (``workers/batches.py`` does the accounting and hands back the
batch's event). Every event goes through :meth:`Outcomes.emit`, where each consumer of events
(the long-poll wake-up, the tenant event stream, webhook deliveries) is plugged in once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from celery import Celery
from redis import Redis
from redis.client import Pipeline
from sqlalchemy.engine import Engine

from schemas.jobs import JobPublic
from schemas.settings import Settings
from schemas.tables import Job
from workers import batches
from workers.event import Event, job_event
from workers.event_log import queue_event
from workers.events import publish_job_event
from workers.keys import RedisKeys
from workers.metrics.recording import record_job_end
from workers.webhooks.emitter import WebhookEmitter


@dataclass
class Outcomes:
    """Announces final states; built once per process from its settings, engine, Redis and
    Celery app (the one that publishes webhook attempts)."""

    settings: Settings
    engine: Engine
    redis: Redis
    keys: RedisKeys
    celery: Celery
    webhooks: WebhookEmitter = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Signed webhook deliveries of this process's events (workers/webhooks/).
        self.webhooks = WebhookEmitter(self.settings, self.engine, self.redis, self.keys, self.celery)

    def announce_job(self, job: Job, along: Callable[[Pipeline], object] | None = None) -> None:
        """Tell everyone who waits on this job that it reached ``job.status``; end its batch if
        it was the last open job of one.

        ``along`` may queue the caller's own commands (a worker gives back the tenant's
        running-jobs slot): they go first, in the same round trip.
        """
        record_job_end(job)  # switchyard_jobs_ended_total: every job's end passes here once
        public = JobPublic.from_row(job).model_dump(mode="json")  # once, for every consumer
        # The wake-up carries the finished job, so a waiting API answers without reading the row.
        # It goes in the event log's round trip.
        pipe = self.redis.pipeline(transaction=False)
        if along is not None:
            along(pipe)
        publish_job_event(pipe, self.keys, job.id, job.tenant_id, job.status, job=public)
        self.emit(job_event(job, public), pipe)
        if job.batch_id is not None:
            self.end_batch(job.batch_id)  # the batch ends with its last job

    def end_batch(self, batch_id: str) -> Event | None:
        """End the batch if no job of it is open, and announce it; the event announced, or None."""
        event = batches.close(self.engine, batch_id)
        if event is not None:
            self.emit(event)
        return event

    def fail_batch(self, batch_id: str) -> None:
        """Fail a batch at once (every line was invalid) and announce it."""
        self.emit(batches.fail(self.engine, batch_id))

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
