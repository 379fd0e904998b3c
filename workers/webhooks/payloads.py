"""The body of a delivery: ``{type, timestamp, data}``, with large objects sent by reference."""

from __future__ import annotations

import json
from typing import Any

from schemas.settings import Settings
from workers.event import Event

# Fields kept when an object goes by reference: enough to route it without fetching.
SUMMARY_FIELDS = ("id", "object", "status", "tier", "model", "error", "metadata", "created_at", "finished_at")


def event_body(event: Event, settings: Settings) -> str:
    """The JSON text every attempt of this event sends, byte for byte."""
    body = _dumps(event.type, event.timestamp.isoformat(), event.data)
    if len(body.encode()) <= settings.webhooks.by_reference_bytes:
        return body
    return _dumps(event.type, event.timestamp.isoformat(), by_reference(event, settings.api_url))


def by_reference(event: Event, api_url: str) -> dict[str, Any]:
    """A summary of the object and the URL to fetch all of it with an API key."""
    resource = "jobs" if event.type.startswith("job.") else "batches"
    summary = {name: event.data[name] for name in SUMMARY_FIELDS if name in event.data}
    return {**summary, "by_reference": True, "url": f"{api_url.rstrip('/')}/v1/{resource}/{event.data['id']}"}


def _dumps(event_type: str, timestamp: str, data: dict[str, Any]) -> str:
    payload = {"type": event_type, "timestamp": timestamp, "data": data}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
