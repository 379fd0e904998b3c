"""Long-poll support: one Redis subscription per API process wakes every waiting request.

A waiting client costs a future in a dict, not a connection or a polling loop.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from api.subscription import ChannelSubscription


class JobWaiter:
    """Resolves ``wait(job_id)`` calls when the job's final-state event arrives."""

    def __init__(self, redis_url: str, channel: str) -> None:
        self._waiting: dict[str, set[asyncio.Future[dict[str, Any]]]] = {}
        self._subscription = ChannelSubscription(
            redis_url, channel, lambda data: self._wake(json.loads(data))
        )

    async def start(self) -> None:
        """Subscribe in the background; returns once the subscription is live (or failed)."""
        await self._subscription.start()

    async def stop(self) -> None:
        """Cancel the subscription."""
        await self._subscription.stop()

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
        return self._subscription.live

    def _wake(self, event: dict[str, Any]) -> None:
        futures = self._waiting.get(event["job_id"], ())
        if futures and "job" in event:
            # Serialised once for every waiter: hundreds may wait on one job (docs/streaming.md).
            event["job_body"] = json.dumps(event["job"]).encode()
        for future in futures:
            if not future.done():
                future.set_result(event)
