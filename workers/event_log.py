"""The tenant event log: every final state, kept per tenant in a Redis stream for GET /v1/events.

Each tenant has one Redis stream; its entry ids (``<ms>-<seq>``) are the SSE event ids a client
resumes from with ``Last-Event-ID``. Entries older than the retention window are trimmed on
each write (``XTRIM MINID ~``), a cap bounds a burst (``MAXLEN ~``), and an idle tenant's
stream expires with the window. A notice on one pub/sub channel wakes the API processes.
"""

from __future__ import annotations

import json
import time

from redis import Redis
from redis.client import Pipeline

from schemas.settings import StreamingSettings
from workers.event import Event
from workers.keys import RedisKeys


def event_json(event: Event) -> str:
    """The event as clients see it in ``data:``: ``{id, type, timestamp, data}``."""
    body = {"id": event.id, "type": event.type, "timestamp": event.timestamp.isoformat(), "data": event.data}
    return json.dumps(body, separators=(",", ":"))


def retention_floor(settings: StreamingSettings, now_ms: int | None = None) -> int:
    """The millisecond time before which events are no longer kept."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    return max(0, now_ms - settings.event_retention_s * 1000)


def record_event(redis: Redis, keys: RedisKeys, settings: StreamingSettings, event: Event) -> str:
    """Append the event to its tenant's stream, trim what fell out of the window, notify readers."""
    pipe = redis.pipeline(transaction=False)
    at = queue_event(pipe, keys, settings, event)
    stream_id = pipe.execute()[at]
    return stream_id.decode() if isinstance(stream_id, bytes) else str(stream_id)


def queue_event(pipe: Pipeline, keys: RedisKeys, settings: StreamingSettings, event: Event) -> int:
    """Queue :func:`record_event`'s commands on the caller's ``pipe``; the index of the reply that
    holds the stream entry id."""
    key = keys.tenant_events(event.tenant_id)
    first = len(pipe)
    pipe.xadd(
        key,
        {"type": event.type, "event": event_json(event)},
        maxlen=settings.event_max_per_tenant,
        approximate=True,
    )
    pipe.xtrim(key, minid=f"{retention_floor(settings)}-0", approximate=True)
    pipe.expire(key, settings.event_retention_s)
    pipe.publish(keys.tenant_event_notices, event.tenant_id)
    return first
