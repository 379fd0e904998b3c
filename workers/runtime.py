"""The per-process runtime a task uses: engine, Redis, providers and the policy chain."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property

from celery import Celery
from redis import Redis
from sqlalchemy.engine import Engine

from schemas.settings import Settings
from workers.budgets.control import BudgetControl
from workers.cache.results import ResultCache, build_result_cache
from workers.chain import PolicyChain
from workers.db import make_engine
from workers.dispatch import Dispatcher
from workers.keys import RedisKeys
from workers.lease_heartbeat import LeaseHeartbeat
from workers.middleware import default_chain
from workers.outcomes import Outcomes
from workers.providers.registry import ProviderRegistry
from workers.ratelimit.limiter import Limiter
from workers.ratelimit.policy import TenantLimits, build_limiter


@dataclass
class Runtime:
    """Built lazily in each worker process (after the fork), shared by its tasks."""

    settings: Settings
    celery: Celery

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings)

    @cached_property
    def redis(self) -> Redis:
        return Redis.from_url(self.settings.redis_url)

    @cached_property
    def keys(self) -> RedisKeys:
        return RedisKeys(self.settings.key_prefix)

    @cached_property
    def providers(self) -> ProviderRegistry:
        return ProviderRegistry(self.settings)

    @cached_property
    def limiter(self) -> Limiter:
        return build_limiter(self.settings, self.redis, self.keys)

    @cached_property
    def dispatcher(self) -> Dispatcher:
        return Dispatcher(self.celery, self.redis, self.keys)

    @cached_property
    def outcomes(self) -> Outcomes:
        return Outcomes(self.settings, self.engine, self.redis, self.keys, self.celery)

    @cached_property
    def tenant_limits(self) -> TenantLimits:
        return TenantLimits(self.engine, self.settings.rate_limits)

    @cached_property
    def results(self) -> ResultCache:
        return build_result_cache(self.settings, self.redis, self.keys)

    @cached_property
    def budgets(self) -> BudgetControl:
        return BudgetControl(self.redis, self.keys, self.engine, self.outcomes.emit)

    @cached_property
    def chain(self) -> PolicyChain:
        return default_chain(self)

    @cached_property
    def lease_heartbeat(self) -> LeaseHeartbeat:
        s = self.settings
        return LeaseHeartbeat(self.engine, s.lease_s, s.lease_heartbeat_s, max_hold_s=s.task_time_limit_s)

    def warm_up(self) -> None:
        """Connect and build every adapter now, so no job pays for first-use imports."""
        with self.engine.connect():
            pass
        self.redis.ping()
        for name in self.settings.providers:
            self.providers.get(name)


_runtimes: dict[int, Runtime] = {}
_runtimes_lock = threading.Lock()


def runtime_for(app: Celery) -> Runtime:
    """The runtime of this process for ``app``, created on first use."""
    key = id(app)
    with _runtimes_lock:  # a threads-pool worker's first tasks arrive together
        if key not in _runtimes:
            runtime = Runtime(settings=app.settings, celery=app)  # type: ignore[attr-defined]
            # cached_property has no lock: build the shared parts (no I/O yet) before threads
            # race on them, so every task of a threads-pool worker shares one of each.
            parts = (
                "engine",
                "redis",
                "dispatcher",
                "outcomes",
                "tenant_limits",
                "budgets",
                "chain",
                "lease_heartbeat",
            )
            for part in parts:
                getattr(runtime, part)
            _runtimes[key] = runtime
        return _runtimes[key]
