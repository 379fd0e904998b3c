"""Long-poll support: one Redis subscription per API process wakes every waiting request.

A waiting client costs a future in a dict, not a connection or a polling loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = structlog.get_logger("switchyard.waiter")


class JobWaiter:
    """Resolves ``wait(job_id)`` calls when the job's final-state event arrives."""

    def __init__(self, redis_url: str, channel: str) -> None:
        self._redis_url = redis_url
        self._channel = channel
        self._waiting: dict[str, set[asyncio.Future[dict[str, Any]]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        """Subscribe in the background; returns once the subscription is live (or failed)."""
        self._task = asyncio.create_task(self._listen_forever())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout=5)

    async def stop(self) -> None:
        """Cancel the subscription."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def register(self, job_id: str) -> asyncio.Future[dict[str, Any]]:
        """A future resolved with the job's event when it arrives; register before reading."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(job_id, set()).add(future)
        return future

    def unregister(self, job_id: str, future: asyncio.Future[dict[str, Any]]) -> None:
        """Forget a future whose request is over."""
        futures = self._waiting.get(job_id)
        if futures is not None:
            futures.discard(future)
            if not futures:
                del self._waiting[job_id]

    @property
    def live(self) -> bool:
        """Whether the subscription is up; callers fall back to slow polling otherwise."""
        return self._ready.is_set()

    def _wake(self, event: dict[str, Any]) -> None:
        futures = self._waiting.get(event["job_id"], ())
        if futures and "job" in event:
            # Serialised once for every waiter: hundreds may wait on one job (docs/streaming.md).
            event["job_body"] = json.dumps(event["job"]).encode()
        for future in futures:
            if not future.done():
                future.set_result(event)

    async def _listen_forever(self) -> None:
        while True:
            try:
                await self._listen()
            except (RedisError, OSError) as exc:
                self._ready.clear()
                log.warning("job_waiter_reconnecting", error=str(exc))
                await asyncio.sleep(1)

    async def _listen(self) -> None:
        async with Redis.from_url(self._redis_url) as redis, redis.pubsub() as pubsub:
            await pubsub.subscribe(self._channel)
            self._ready.set()
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    self._wake(json.loads(message["data"]))
