"""One Redis subscription per API process that wakes every event-stream reader of a tenant.

Readers do not hold a Redis connection while idle: each waits on an ``asyncio.Event`` that
the hub sets when a notice for its tenant arrives, then reads the new entries with one XRANGE.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis

from api.subscription import ChannelSubscription

READER_CONNECTIONS = 32
BLOCKING_CONNECTIONS = 10_000


class EventHub:
    """Wakes the readers of a tenant's event stream; owns the async Redis client they read with."""

    def __init__(self, redis_url: str, channel: str) -> None:
        self._readers: dict[str, set[asyncio.Event]] = {}
        self._reads: dict[tuple[str, str], asyncio.Future[Any]] = {}
        # Notices sent while the subscription was down are lost: on (re)connecting, every
        # reader looks again.
        self._subscription = ChannelSubscription(
            redis_url, channel, lambda data: self._wake(data.decode()), self._wake_all
        )
        # Readers take a connection for one short XRANGE; when hundreds wake at once they queue
        # for a bounded pool instead of opening hundreds of connections (or failing).
        pool = BlockingConnectionPool.from_url(redis_url, max_connections=READER_CONNECTIONS, timeout=None)
        self.redis: Redis = Redis(connection_pool=pool)
        # Commands that block (the token relay's XREAD BLOCK) hold a connection while they wait.
        self.blocking: Redis = Redis.from_url(redis_url, max_connections=BLOCKING_CONNECTIONS)

    async def start(self) -> None:
        """Subscribe in the background; returns once the subscription is live (or failed)."""
        await self._subscription.start()

    async def stop(self) -> None:
        """Cancel the subscription and close the readers' client."""
        await self._subscription.stop()
        await self.redis.aclose()
        await self.blocking.aclose()

    @property
    def live(self) -> bool:
        """Whether notices arrive; readers re-read on a short timer otherwise."""
        return self._subscription.live

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

    async def read_after(self, key: str, cursor: str, count: int) -> list[Any]:
        """Entries of stream ``key`` after ``cursor`` (``0``: from the start).

        The readers a notice wakes ask for the same entries at the same moment: identical
        reads in flight share one XRANGE.
        """
        wanted = (key, cursor)
        pending = self._reads.get(wanted)
        if pending is None:
            low = f"({cursor}" if cursor != "0" else "-"
            pending = asyncio.ensure_future(self.redis.xrange(key, min=low, count=count))
            self._reads[wanted] = pending
            pending.add_done_callback(lambda _: self._reads.pop(wanted, None))
        # Shielded: one reader leaving must not cancel the read the others wait on.
        return list(await asyncio.shield(pending) or [])

    def _wake(self, tenant_id: str) -> None:
        for notice in self._readers.get(tenant_id, ()):
            notice.set()

    def _wake_all(self) -> None:
        for tenant_id in list(self._readers):
            self._wake(tenant_id)
