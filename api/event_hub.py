"""One Redis subscription per API process that wakes every event-stream reader of a tenant.

Readers do not hold a Redis connection while idle: each waits on an ``asyncio.Event`` that
the hub sets when a notice for its tenant arrives, then reads the new entries with one XRANGE.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = structlog.get_logger("switchyard.event_hub")


class EventHub:
    """Wakes the readers of a tenant's event stream; owns the async Redis client they read with."""

    def __init__(self, redis_url: str, channel: str) -> None:
        self._redis_url = redis_url
        self._channel = channel
        self._readers: dict[str, set[asyncio.Event]] = {}
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self.redis: Redis = Redis.from_url(redis_url)

    async def start(self) -> None:
        """Subscribe in the background; returns once the subscription is live (or failed)."""
        self._task = asyncio.create_task(self._listen_forever())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout=5)

    async def stop(self) -> None:
        """Cancel the subscription and close the readers' client."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.redis.aclose()

    @property
    def live(self) -> bool:
        """Whether notices arrive; readers re-read on a short timer otherwise."""
        return self._ready.is_set()

    def register(self, tenant_id: str) -> asyncio.Event:
        """An event set whenever the tenant's stream grows; register before the first read."""
        notice = asyncio.Event()
        self._readers.setdefault(tenant_id, set()).add(notice)
        return notice

    def unregister(self, tenant_id: str, notice: asyncio.Event) -> None:
        """Forget a reader whose connection ended."""
        readers = self._readers.get(tenant_id)
        if readers is not None:
            readers.discard(notice)
            if not readers:
                del self._readers[tenant_id]

    def _wake(self, tenant_id: str) -> None:
        for notice in self._readers.get(tenant_id, ()):
            notice.set()

    async def _listen_forever(self) -> None:
        while True:
            try:
                await self._listen()
            except (RedisError, OSError) as exc:
                self._ready.clear()
                log.warning("event_hub_reconnecting", error=str(exc))
                await asyncio.sleep(1)

    async def _listen(self) -> None:
        async with Redis.from_url(self._redis_url) as redis, redis.pubsub() as pubsub:
            await pubsub.subscribe(self._channel)
            self._ready.set()
            # Notices sent while the subscription was down are lost: let every reader look again.
            for tenant_id in list(self._readers):
                self._wake(tenant_id)
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    self._wake(message["data"].decode())
