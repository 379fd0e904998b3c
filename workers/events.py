"""Job events on Redis pub/sub: how long-polling API processes learn a job is done."""

from __future__ import annotations

import json

from redis import Redis

from workers.keys import RedisKeys


def event_payload(job_id: str, tenant_id: str, status: str) -> str:
    """The message published when a job reaches a final state."""
    return json.dumps({"job_id": job_id, "tenant_id": tenant_id, "status": status})


def publish_job_event(redis: Redis, keys: RedisKeys, job_id: str, tenant_id: str, status: str) -> None:
    """Tell every waiting API process that the job changed."""
    redis.publish(keys.job_events, event_payload(job_id, tenant_id, status))
