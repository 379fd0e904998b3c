"""Server-Sent Events framing, shared by the tenant event stream and the token relay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import StreamingResponse

KEEPALIVE = b": keep-alive\n\n"
# Proxies (nginx) buffer responses unless told not to; an event stream must not be buffered.
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def frame(event: str, data: str, event_id: str | None = None) -> bytes:
    """One SSE event; ``data`` is one line of JSON, so it needs no splitting."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {data}\n\n".encode()


def retry_hint(retry_ms: int) -> bytes:
    """The ``retry:`` field: how long a disconnected client waits before reconnecting."""
    return f"retry: {retry_ms}\n\n".encode()


def sse_response(body: AsyncIterator[bytes], **kwargs: Any) -> StreamingResponse:
    """A ``text/event-stream`` response streaming ``body``."""
    return StreamingResponse(body, media_type="text/event-stream", headers=HEADERS, **kwargs)
