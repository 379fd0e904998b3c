"""Long-poll support: one Redis subscription per API process wakes every waiting request.

A waiting client costs a future in a dict, not a connection or a polling loop.

The waiter also remembers, for ``RECENT_S`` seconds, the jobs this process has just accepted
(``expect``) and the final state of each that has since ended. A client that submits and then
long-polls (the common case) gets its answer without a database read: this process knows the
job exists, whose it is, and whether it has ended. It knows the last only while the
subscription has stayed up since the job was accepted; otherwise the read happens as before.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from api.subscription import ChannelSubscription
from schemas.jobs import FINAL_STATUSES

RECENT_S = 10.0


@dataclass
class RecentJob:
    """A job this process accepted: its tenant, and its final job once the event came."""

    tenant_id: str
    epoch: int
    expires_at: float
    final_body: bytes | None = None


class JobWaiter:
    """Resolves ``wait(job_id)`` calls when the job's final-state event arrives."""

    def __init__(self, redis_url: str, channel: str) -> None:
        self._waiting: dict[str, set[asyncio.Future[dict[str, Any]]]] = {}
        self._recent: dict[str, RecentJob] = {}  # in order of acceptance, so oldest first
        self._epoch = 0  # subscriptions so far: an event may be lost between two of them
        self._subscription = ChannelSubscription(
            redis_url, channel, lambda data: self._wake(json.loads(data)), self._resubscribed
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

    def expect(self, job_id: str, tenant_id: str) -> None:
        """Remember a job this process is accepting; call before it is published."""
        now = time.monotonic()
        recent = self._recent
        while recent:
            oldest = next(iter(recent))
            if recent[oldest].expires_at > now:
                break
            del recent[oldest]
        recent[job_id] = RecentJob(tenant_id, self._epoch, now + RECENT_S)

    def forget(self, job_id: str) -> None:
        """Drop a job ``expect`` named that was not accepted after all (refused, replayed, cached)."""
        self._recent.pop(job_id, None)

    def recent(self, job_id: str, tenant_id: str) -> RecentJob | None:
        """The tenant's job if this process accepted it lately and has seen every event since."""
        job = self._recent.get(job_id)
        if job is None or job.tenant_id != tenant_id or job.expires_at <= time.monotonic():
            return None
        return job if self.live and job.epoch == self._epoch else None

    @property
    def live(self) -> bool:
        """Whether the subscription is up; callers fall back to slow polling otherwise."""
        return self._subscription.live

    def _resubscribed(self) -> None:
        self._epoch += 1

    def _wake(self, event: dict[str, Any]) -> None:
        job_id = event["job_id"]
        futures = self._waiting.get(job_id, ())
        recent = self._recent.get(job_id)
        if (futures or recent is not None) and "job" in event:
            # Serialised once for every waiter: hundreds may wait on one job (docs/streaming.md).
            event["job_body"] = json.dumps(event["job"]).encode()
            if (
                recent is not None
                and event.get("status") in FINAL_STATUSES
                and event.get("tenant_id") == recent.tenant_id
            ):
                recent.final_body = event["job_body"]
        for future in futures:
            if not future.done():
                future.set_result(event)
