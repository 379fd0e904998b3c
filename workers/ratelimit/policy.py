"""From Settings to limiter calls: bucket names and limits of models and tenants."""

from __future__ import annotations

import threading
import time

from redis import Redis
from sqlalchemy.engine import Engine
from sqlmodel import Session

from schemas.settings import ModelConfig, RateLimitSettings, Settings
from schemas.tables import Tenant
from workers.keys import RedisKeys
from workers.ratelimit.limiter import AdaptivePolicy, BucketLimits, Limiter

TENANT_CACHE_S = 30.0


def build_limiter(settings: Settings, redis: Redis, keys: RedisKeys) -> Limiter:
    """The limiter with the configured AIMD policy; in-flight slots outlive the longest task."""
    rl = settings.rate_limits
    adaptive = AdaptivePolicy(
        enabled=rl.adaptive,
        decrease=rl.aimd_decrease,
        min_factor=rl.aimd_min_factor,
        recovery_per_window=rl.aimd_recovery_per_window,
        cooldown_s=rl.aimd_cooldown_s,
    )
    # A slot is given back when its call ends; this only bounds how long a dead worker's slot
    # stays taken. Not the job's lease: that one is short and renewed by a heartbeat, and a
    # slot expiring while its call still runs would admit more than the limit.
    slot_s = settings.task_time_limit_s + settings.lease_s
    return Limiter(redis, keys, lease_s=slot_s, adaptive=adaptive)


def model_limits(model: ModelConfig, rl: RateLimitSettings) -> BucketLimits:
    """A model's provider limits over the configured window.

    The window is kept ``window_margin_s`` longer than the provider's: a grant is dated when
    the worker takes it and the provider counts the call when it arrives, a little later, so
    without the margin a call granted just as an old one leaves our window could reach the
    provider while that old one is still in its window.
    """
    return BucketLimits(
        window_s=rl.window_s + rl.window_margin_s,
        rpm=model.rpm,
        tpm=model.tpm,
        concurrency=model.max_concurrency,
    )


def tenant_rpm_bucket(tenant_id: str) -> str:
    return f"tenant-rpm/{tenant_id}"


def tenant_running_bucket(tenant_id: str) -> str:
    return f"tenant-running/{tenant_id}"


def tenant_rpm_limits(rl: RateLimitSettings, rpm: int | None) -> BucketLimits:
    """A tenant's submissions per window: its own limit, or the default."""
    return BucketLimits(window_s=rl.tenant_window_s, rpm=rpm or rl.tenant_rpm)


class TenantLimits:
    """Each tenant's cap on running jobs, read from its row and cached for 30 s."""

    def __init__(self, engine: Engine, rl: RateLimitSettings) -> None:
        self._engine = engine
        self._rl = rl
        self._cache: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def running(self, tenant_id: str) -> BucketLimits:
        """The tenant's running-jobs limit as a concurrency bucket."""
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(tenant_id)
        if cached is None or cached[0] < now:
            with Session(self._engine) as session:
                tenant = session.get(Tenant, tenant_id)
            limit = (tenant.max_running_jobs if tenant else None) or self._rl.tenant_max_running
            cached = (now + TENANT_CACHE_S, limit)
            with self._lock:
                self._cache[tenant_id] = cached
        return BucketLimits(window_s=self._rl.tenant_window_s, concurrency=cached[1])
