"""A worker bootstep that publishes due deferred jobs (see ``Dispatcher.defer``).

It runs in every worker's main process on Celery's timer, every ``INTERVAL_S``. The entries
are popped atomically, so any number of workers on any number of machines can run it: each
due job is published once, as an ordinary message that any free worker may take.
"""

from __future__ import annotations

from typing import Any

import structlog
from celery import bootsteps
from redis import Redis
from redis.exceptions import RedisError

from workers.dispatch import Dispatcher
from workers.keys import RedisKeys

INTERVAL_S = 0.2
log = structlog.get_logger("switchyard.deferred")


class DeferredRelease(bootsteps.StartStopStep):
    """Publishes due deferred jobs from the worker's main process."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.timer_ref: Any = None
        self.dispatcher: Dispatcher | None = None

    def start(self, worker: Any) -> None:
        settings = worker.app.settings
        redis = Redis.from_url(settings.redis_url, socket_timeout=5)
        self.dispatcher = Dispatcher(worker.app, redis, RedisKeys(settings.key_prefix))
        self.timer_ref = worker.timer.call_repeatedly(INTERVAL_S, self.release, priority=10)

    def stop(self, worker: Any) -> None:
        if self.timer_ref is not None:
            self.timer_ref.cancel()
            self.timer_ref = None

    def release(self) -> None:
        assert self.dispatcher is not None
        try:
            self.dispatcher.release_due()
        except RedisError as exc:  # the broker is down too; the next tick tries again
            log.warning("deferred_release_failed", error=str(exc))
