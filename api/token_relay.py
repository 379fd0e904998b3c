"""GET /v1/jobs/{id}/stream: a streaming job's text as Server-Sent Events, then the final job.

Events: ``delta`` (``{"content": "..."}``) as the worker publishes text, ``restart``
(``{"attempt": n}``) when a retry or a fallback model starts the text over, and last ``job``
with the final job object, after which the stream ends. A job that is already final, or that
never streamed (a cache hit, a provider without streaming), sends its stored text as one delta.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session

from api import sse
from api.services import Services
from schemas.jobs import FINAL_STATUSES, JobPublic
from schemas.tables import Job
from workers import store

FALLBACK_POLL_S = 1.0
PAGE = 200


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def stored_text(job: dict[str, Any]) -> str | None:
    """The answer's text of a finished chat job, if it has one."""
    result = job.get("result") or {}
    choices = result.get("choices") or [{}]
    content = (choices[0].get("message") or {}).get("content")
    return content if isinstance(content, str) else None


@dataclass
class Relay:
    """What one client has been sent: the attempt being relayed and its text so far."""

    cursor: str = "0"
    attempt: str | None = None
    text: list[str] = field(default_factory=list)

    def frames(self, entries: list[tuple[Any, dict[Any, Any]]]) -> list[bytes]:
        """SSE frames for token-stream entries; a new attempt restarts the text."""
        out = []
        for entry_id, fields in entries:
            self.cursor = _text(entry_id)
            attempt = _text(fields[b"a"])
            if self.attempt is not None and attempt != self.attempt:
                out.append(sse.frame("restart", json.dumps({"attempt": int(attempt)})))
                self.text = []
            self.attempt = attempt
            delta = _text(fields[b"d"])
            self.text.append(delta)
            out.append(sse.frame("delta", json.dumps({"content": delta})))
        return out

    def closing(self, job: dict[str, Any]) -> list[bytes]:
        """The frames that end the stream: the stored text if it was not relayed as is, then the job."""
        out = []
        text = stored_text(job) if job.get("status") == "succeeded" else None
        if text is not None and text != "".join(self.text):
            if self.text:
                out.append(sse.frame("restart", json.dumps({"attempt": job.get("attempts")})))
            out.append(sse.frame("delta", json.dumps({"content": text})))
        out.append(sse.frame("job", json.dumps(job)))
        return out


def _read(services: Services, tenant_id: str, job_id: str) -> Job:
    with Session(services.engine, expire_on_commit=False) as session:
        return store.get_job(session, tenant_id, job_id)


async def relay_job(
    services: Services, tenant_id: str, job: Job, woken: asyncio.Future[dict[str, Any]]
) -> AsyncIterator[bytes]:
    """The SSE body; ``woken`` is the job waiter's future, registered before ``job`` was read."""
    relay = Relay()
    try:
        yield sse.retry_hint(services.settings.streaming.retry_ms)
        if job.status not in FINAL_STATUSES:
            async for chunk in _follow(services, tenant_id, job.id, woken, relay):
                yield chunk
        final = _final_job(woken, tenant_id)
        if final is None:
            if job.status not in FINAL_STATUSES:
                job = await run_in_threadpool(_read, services, tenant_id, job.id)
            final = JobPublic.from_row(job).model_dump(mode="json")
        for chunk in relay.closing(final):
            yield chunk
    finally:
        services.waiter.unregister(job.id, woken)


def _final_job(woken: asyncio.Future[dict[str, Any]], tenant_id: str) -> dict[str, Any] | None:
    if not woken.done():
        return None
    event = woken.result()
    return dict(event["job"]) if "job" in event and event.get("tenant_id") == tenant_id else None


async def _follow(
    services: Services, tenant_id: str, job_id: str, woken: asyncio.Future[dict[str, Any]], relay: Relay
) -> AsyncIterator[bytes]:
    """Relay deltas until the job is final; one blocking XREAD at a time, raced with the wake-up."""
    redis, key = services.event_hub.blocking, services.keys.job_tokens(job_id)
    keepalive_s = services.settings.streaming.keepalive_s
    deadline = time.monotonic() + services.settings.streaming.max_stream_s
    while not woken.done():
        left = deadline - time.monotonic()
        if left <= 0:
            return  # the connection's time is up; the client reconnects and catches up from the start
        block_s = min(keepalive_s if services.waiter.live else FALLBACK_POLL_S, left)
        block_ms = max(1, int(block_s * 1000))
        read = asyncio.ensure_future(redis.xread({key: relay.cursor}, count=PAGE, block=block_ms))
        await asyncio.wait((read, woken), return_when=asyncio.FIRST_COMPLETED)
        if not read.done():
            read.cancel()  # the job ended; redis-py drops the connection of a cancelled command
            with contextlib.suppress(asyncio.CancelledError):
                await read
            break
        response: Any = read.result()  # [[key, [(id, fields), ...]]], or empty on timeout
        entries = [entry for _, stream in response or [] for entry in stream]
        for frame in relay.frames(entries):
            yield frame
        if not entries:
            yield sse.KEEPALIVE
            if not services.waiter.live:
                job = await run_in_threadpool(_read, services, tenant_id, job_id)
                if job.status in FINAL_STATUSES:
                    return
    # Everything the worker published came before its final-state event: read what is left.
    rest: Any = await redis.xrange(key, min=f"({relay.cursor}" if relay.cursor != "0" else "-")
    for frame in relay.frames(list(rest or [])):
        yield frame
