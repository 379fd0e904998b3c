"""The long-lived objects of one API process, built once from Settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio
import anyio.to_thread
from redis import Redis
from sqlalchemy.engine import Engine

from api.admission import Admission
from api.event_hub import EventHub
from api.job_waiter import JobWaiter
from api.principal_cache import PrincipalCache
from api.publish_marks import PublishMarks
from schemas.settings import Settings
from workers.budgets.control import BudgetControl
from workers.cache.results import ResultCache, build_result_cache
from workers.celery_app import SwitchyardCelery, create_celery
from workers.db import make_engine
from workers.dispatch import Dispatcher
from workers.keys import RedisKeys
from workers.outcomes import Outcomes
from workers.ratelimit.limiter import Limiter
from workers.ratelimit.policy import TenantLimits, build_limiter

T = TypeVar("T")


@dataclass
class ThreadLane:
    """A few threads of the API's own for its hot path (submitting and reading jobs).

    Every thread that runs Python contends for the GIL: with anyio's default 40 threads, 16
    concurrent submissions spent a tenth more CPU on the same work than with 4. Slow endpoints
    (batch uploads, listings) keep the default pool, so they cannot starve this lane.
    """

    size: int
    _limiter: anyio.CapacityLimiter | None = None

    async def run(self, function: Callable[..., T], *args: object) -> T:
        """``function(*args)`` on one of the lane's threads."""
        if self._limiter is None:  # made in the event loop, on first use
            self._limiter = anyio.CapacityLimiter(self.size)
        return await anyio.to_thread.run_sync(function, *args, limiter=self._limiter)


@dataclass
class Services:
    """Settings, database, broker, Redis and the job waiter of the API process."""

    settings: Settings
    engine: Engine
    celery: SwitchyardCelery
    redis: Redis
    keys: RedisKeys
    waiter: JobWaiter
    event_hub: EventHub
    principals: PrincipalCache
    publish_marks: PublishMarks
    limiter: Limiter
    dispatcher: Dispatcher
    admission: Admission
    tenant_limits: TenantLimits
    results: ResultCache
    outcomes: Outcomes
    job_lane: ThreadLane
    budgets: BudgetControl

    @classmethod
    def build(cls, settings: Settings) -> Services:
        keys = RedisKeys(settings.key_prefix)
        engine = make_engine(settings)
        celery = create_celery(settings)
        redis = Redis.from_url(settings.redis_url, socket_timeout=5)
        limiter = build_limiter(settings, redis, keys)
        dispatcher = Dispatcher(celery, redis, keys)
        outcomes = Outcomes(settings, engine, redis, keys, celery)
        return cls(
            settings=settings,
            engine=engine,
            celery=celery,
            redis=redis,
            keys=keys,
            waiter=JobWaiter(settings.redis_url, keys.job_events),
            event_hub=EventHub(settings.redis_url, keys.tenant_event_notices),
            principals=PrincipalCache(redis, keys.auth_epoch),
            publish_marks=PublishMarks(engine),
            limiter=limiter,
            dispatcher=dispatcher,
            admission=Admission(settings, limiter, dispatcher),
            tenant_limits=TenantLimits(engine, settings.rate_limits),
            results=build_result_cache(settings, redis, keys),
            outcomes=outcomes,
            job_lane=ThreadLane(settings.api_job_threads),
            budgets=BudgetControl(redis, keys, engine, outcomes.emit),
        )

    def close(self) -> None:
        self.publish_marks.close()
        self.engine.dispose()
        self.redis.close()
