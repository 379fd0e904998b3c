"""The event a tenant may be told about (``job.succeeded``, ``batch.completed``, ...).

It sits below everything that handles events: ``workers/outcomes.py`` makes them, the event
log (``workers/event_log.py``) and the webhook emitter (``workers/webhooks/``) consume them.
It imports nothing of theirs. (``workers/events.py`` is another thing: the pub/sub wake-up of
long-polling API processes.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from schemas.tables import Job, utcnow
from workers.ids import new_id


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
