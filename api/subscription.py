"""One Redis pub/sub subscription held by an API process, resubscribing when it drops.

The long-poll waiter and the event-stream hub each own one and decide what a message means.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = structlog.get_logger("switchyard.subscription")


class ChannelSubscription:
    """Calls ``on_message(data)`` for each message on ``channel``; ``on_connect()`` after each
    (re)subscription, since messages sent while it was down are lost."""

    def __init__(
        self,
        redis_url: str,
        channel: str,
        on_message: Callable[[bytes], None],
        on_connect: Callable[[], None] = lambda: None,
    ) -> None:
        self._redis_url = redis_url
        self._channel = channel
        self._on_message = on_message
        self._on_connect = on_connect
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        """Subscribe in the background; returns once the subscription is live (or failed)."""
        self._task = asyncio.create_task(self._listen_forever())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout=5)

    async def stop(self) -> None:
        """Cancel the subscription."""
        self._ready.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def live(self) -> bool:
        """Whether the subscription is up."""
        return self._ready.is_set()

    async def _listen_forever(self) -> None:
        while True:
            try:
                await self._listen()
            except (RedisError, OSError) as exc:
                self._ready.clear()
                log.warning("subscription_reconnecting", channel=self._channel, error=str(exc))
                await asyncio.sleep(1)

    async def _listen(self) -> None:
        async with Redis.from_url(self._redis_url) as redis, redis.pubsub() as pubsub:
            await pubsub.subscribe(self._channel)
            self._ready.set()
            self._on_connect()
            message: dict[str, Any]
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    self._on_message(message["data"])
