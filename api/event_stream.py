"""GET /v1/events: a tenant's final-state events as Server-Sent Events, resumable by id.

The SSE ``id`` is the entry id in the tenant's Redis stream (workers/event_log.py). A reader
starts after the newest entry, or after ``Last-Event-ID``; ``0`` replays everything retained.
If events after the resume point may have been trimmed, the stream first sends an
``event: reset`` and then everything still retained, so the client knows to re-list its jobs.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from api import sse
from api.event_hub import EventHub
from schemas.errors import InvalidLastEventId
from schemas.settings import StreamingSettings
from workers.event_log import retention_floor

STREAM_ID = re.compile(r"^(0|\d{1,15}-\d{1,19})$")
PAGE = 100
FALLBACK_POLL_S = 1.0


def parse_resume_id(value: str | None) -> str | None:
    """A checked ``Last-Event-ID``: a stream id ``<ms>-<seq>``, ``0`` for all retained, or None."""
    if value is None or value == "":
        return None
    value = value.strip()
    if not STREAM_ID.match(value):
        raise InvalidLastEventId("Last-Event-ID must be an event id of this stream (`<ms>-<seq>`) or 0.")
    return value


def _decode(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _id_key(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


@dataclass
class TenantEventReader:
    """Reads one tenant's stream for one SSE connection."""

    hub: EventHub
    key: str
    settings: StreamingSettings

    @property
    def redis(self) -> Redis:
        return self.hub.redis

    async def newest_id(self) -> str:
        """The id of the newest entry, ``0`` when the stream is empty."""
        newest = await self.redis.xrevrange(self.key, count=1)
        return _decode(newest[0][0]) if newest else "0"

    async def history_lost_after(self, resume_id: str) -> bool:
        """Whether events after ``resume_id`` may be gone: past the window, or trimmed by the cap.

        Conservative: a resume entry trimmed together with nothing after it still says lost.
        """
        if resume_id == "0":
            return False
        if _id_key(resume_id)[0] < retention_floor(self.settings):
            return True
        # Trimming removes the oldest entries (and does not update XINFO's max-deleted-entry-id),
        # so if the resume entry itself is gone, what followed it may be too.
        oldest: Any = await self.redis.xrange(self.key, count=1)
        return bool(oldest) and _id_key(_decode(oldest[0][0])) > _id_key(resume_id)

    async def frames_after(self, cursor: str) -> tuple[list[bytes], str]:
        """SSE frames of up to a page of entries after ``cursor``, and the new cursor."""
        entries = await self.hub.read_after(self.key, cursor, PAGE)
        frames = []
        for raw_id, fields in entries:
            cursor = _decode(raw_id)
            assert fields is not None
            frames.append(sse.frame(_decode(fields[b"type"]), _decode(fields[b"event"]), cursor))
        return frames, cursor


def reset_frame(resume_id: str) -> bytes:
    """The event that tells a resuming client some events are gone."""
    body = {
        "code": "event_history_lost",
        "message": f"Events after {resume_id} are past the retention window; replaying what is kept.",
        "last_event_id": resume_id,
    }
    return sse.frame("reset", json.dumps(body))


async def tenant_events(
    hub: EventHub, key: str, tenant_id: str, settings: StreamingSettings, resume_id: str | None
) -> AsyncIterator[bytes]:
    """The SSE body: retry hint, the reset if needed, then every event as it is recorded."""
    notice = hub.register(tenant_id)
    reader = TenantEventReader(hub, key, settings)
    try:
        yield sse.retry_hint(settings.retry_ms)
        if resume_id is None:
            cursor = await reader.newest_id()
        elif await reader.history_lost_after(resume_id):
            yield reset_frame(resume_id)
            cursor = "0"
        else:
            cursor = resume_id
        deadline = time.monotonic() + settings.max_stream_s
        async for chunk in _follow(reader, notice, hub, cursor, settings.keepalive_s, deadline):
            yield chunk
    finally:
        hub.unregister(tenant_id, notice)


async def _follow(
    reader: TenantEventReader,
    notice: asyncio.Event,
    hub: EventHub,
    cursor: str,
    keepalive_s: float,
    deadline: float,
) -> AsyncIterator[bytes]:
    """Send new entries as notices arrive until ``deadline``; a comment keeps an idle connection open."""
    quiet_since, must_read = time.monotonic(), True
    while time.monotonic() < deadline:
        if must_read:
            notice.clear()  # before the read, so a notice during the read is not lost
            frames, cursor = await reader.frames_after(cursor)
            for item in frames:
                yield item
            if len(frames) == PAGE:
                continue
            if frames:
                quiet_since = time.monotonic()
        timeout = min(keepalive_s if hub.live else FALLBACK_POLL_S, max(0.0, deadline - time.monotonic()))
        try:
            await asyncio.wait_for(notice.wait(), timeout=timeout)
            must_read = True
        except TimeoutError:
            must_read = not hub.live  # with notices flowing, a quiet stream has nothing new
        if time.monotonic() - quiet_since >= keepalive_s:
            yield sse.KEEPALIVE
            quiet_since = time.monotonic()
