"""The per-process runtime a task uses: engine, Redis, providers and the policy chain."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from celery import Celery
from redis import Redis
from sqlalchemy.engine import Engine

from schemas.settings import Settings
from workers.chain import PolicyChain
from workers.db import make_engine
from workers.keys import RedisKeys
from workers.middleware import default_chain
from workers.providers.registry import ProviderRegistry


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
    def chain(self) -> PolicyChain:
        return default_chain()

    def warm_up(self) -> None:
        """Connect and build every adapter now, so no job pays for first-use imports."""
        with self.engine.connect():
            pass
        self.redis.ping()
        for name in self.settings.providers:
            self.providers.get(name)


_runtimes: dict[int, Runtime] = {}


def runtime_for(app: Celery) -> Runtime:
    """The runtime of this process for ``app``, created on first use."""
    key = id(app)
    if key not in _runtimes:
        _runtimes[key] = Runtime(settings=app.settings, celery=app)  # type: ignore[attr-defined]
    return _runtimes[key]
