"""Job events on Redis pub/sub: how long-polling API processes learn a job is done."""

from __future__ import annotations

import json
from typing import Any

from redis import Redis
from redis.client import Pipeline

from workers.keys import RedisKeys


def event_payload(job_id: str, tenant_id: str, status: str, job: dict[str, Any] | None = None) -> str:
    """The message published when a job reaches a final state; with the public job (its JSON
    form, ``JobPublic.model_dump(mode="json")``) when known."""
    payload: dict[str, Any] = {"job_id": job_id, "tenant_id": tenant_id, "status": status}
    if job is not None:
        payload["job"] = job
    return json.dumps(payload)


def publish_job_event(
    redis: Redis | Pipeline,
    keys: RedisKeys,
    job_id: str,
    tenant_id: str,
    status: str,
    job: dict[str, Any] | None = None,
) -> None:
    """Tell every waiting API process that the job changed (queued on ``redis`` if a pipeline)."""
    redis.publish(keys.job_events, event_payload(job_id, tenant_id, status, job))
