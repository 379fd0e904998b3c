"""Admission control: a tenant's submission rate, and whether a tier can take more work.

Live jobs are refused (429 ``tier_saturated``) while the tier's live queue would take longer
than ``max_queue_seconds`` to drain under the current limits; batch and precompute jobs are
still accepted until the tier holds ``max_queue_depth`` jobs (429 ``queue_full``). Tier
figures are read from Redis at most every ``REFRESH_S`` seconds per process and counted up
locally in between, so a burst cannot slip past a stale figure.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from redis.client import Pipeline

from api.keys import Principal
from schemas.errors import QueueFull, TenantRateLimited, TierSaturated
from schemas.settings import Settings
from workers.dispatch import Dispatcher
from workers.ratelimit.limiter import Limiter
from workers.ratelimit.policy import tenant_rpm_bucket, tenant_rpm_limits
from workers.ratelimit.report import TierLimits, model_report, tier_report

REFRESH_S = 0.5


class Admission:
    """Decides, per submission, whether the API takes the job now."""

    def __init__(self, settings: Settings, limiter: Limiter, dispatcher: Dispatcher) -> None:
        self.settings = settings
        self.limiter = limiter
        self.dispatcher = dispatcher
        self._tiers: dict[str, tuple[float, TierLimits]] = {}
        self._lock = threading.Lock()

    def check_tenant_rate(
        self, principal: Principal, along: Callable[[Pipeline], object] | None = None
    ) -> list[Any]:
        """Raise 429 ``tenant_rate_limited`` if the tenant is over its submissions per minute.

        ``along`` may queue the caller's own reads on the check's round trip; their replies are
        returned.
        """
        limits = tenant_rpm_limits(self.settings.rate_limits, principal.rpm_limit)
        decision = self.limiter.acquire(tenant_rpm_bucket(principal.tenant_id), limits, 0, along=along)
        if not decision.granted:
            raise TenantRateLimited(
                f"Over this tenant's {limits.rpm} submissions per {limits.window_s:.0f}s; "
                "retry after the Retry-After seconds.",
                retry_after=decision.wait_s,
            )
        return decision.along

    def check_tier(self, tier: str, priority: str) -> None:
        """Raise a 429 error if the tier cannot queue a job of this priority now."""
        status = self._tier_status(tier)
        if status.full:
            raise QueueFull(
                f"Tier {tier!r} holds {status.total_queued} queued jobs, its maximum; retry later.",
                retry_after=max(1.0, status.total_drain_s / 10),
                tier=tier,
            )
        if priority == "live" and status.live_saturated:
            raise TierSaturated(
                f"Tier {tier!r} needs {status.live_drain_s:.0f}s to drain its live queue, over its "
                f"{status.max_queue_seconds:.0f}s maximum; retry later or submit with priority 'batch'.",
                retry_after=status.live_drain_s - status.max_queue_seconds,
                tier=tier,
            )
        with self._lock:
            status.queued[priority] += 1

    def _tier_status(self, tier: str) -> TierLimits:
        now = time.monotonic()
        with self._lock:
            cached = self._tiers.get(tier)
        if cached is not None and cached[0] > now:
            return cached[1]
        models = model_report(self.settings, self.limiter)
        status = tier_report(self.settings, tier, self.settings.tiers[tier], self.dispatcher, models)
        with self._lock:
            self._tiers[tier] = (now + REFRESH_S, status)
        return status
