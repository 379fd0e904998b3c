"""The bare Celery side of ``bench/overhead.py``: its worker, warm-up and measured rounds."""

from __future__ import annotations

import time

from bare_celery_app import BARE_QUEUE, BARE_TASK, REDIS_URL_ENV, make_bare_app
from results import SequentialRound

from infra.launch import ProcessGroup, worker_argv

WORKER = "bare-worker"
PROCESSES = frozenset({"benchmark client", WORKER, "Redis server", "PostgreSQL server"})


class BareSide:
    """A bare Celery worker (prefork, two processes) and a client app on the same Redis."""

    name = "bare Celery"

    def __init__(self, procs: ProcessGroup, redis_url: str) -> None:
        """Start the worker; :meth:`warm_up` waits until it answers."""
        procs.start(
            WORKER,
            worker_argv([BARE_QUEUE], 2, "bare", app="bare_celery_app", log_level="WARNING"),
            env={REDIS_URL_ENV: redis_url},
        )
        self.client = make_bare_app(redis_url)
        self.noop = self.client.tasks[BARE_TASK]

    def warm_up(self, count: int) -> list[str]:
        """Wait for the worker, then run ``count`` round trips and a burst; returns failures."""
        self.noop.apply_async().get(timeout=60)  # the worker is up once this returns
        for _ in range(count):
            self.noop.apply_async().get(timeout=10)
        _, failures = self.throughput(8)
        return [f"warm-up {failure}" for failure in failures]

    def sequential(self, count: int) -> SequentialRound:
        """``count`` ``apply_async().get()`` round trips, one at a time."""
        latencies = []
        for _ in range(count):
            started = time.perf_counter()
            self.noop.apply_async().get(timeout=10)
            latencies.append((time.perf_counter() - started) * 1000)
        return SequentialRound(latencies)

    def throughput(self, count: int) -> tuple[float, list[str]]:
        """``apply_async`` ``count`` tasks, then ``get`` each; (seconds, failures)."""
        failures: list[str] = []
        started = time.perf_counter()
        results = [self.noop.apply_async() for _ in range(count)]
        for result in results:
            try:
                result.get(timeout=120)
            except Exception as exc:  # the task boundary of the baseline: count and show it
                failures.append(f"bare {result.id}: {exc!r}")
        return time.perf_counter() - started, failures

    def close(self) -> None:
        """Close the client app's connections (the worker stops with the process group)."""
        self.client.close()
