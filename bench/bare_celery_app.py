"""The baseline of ``bench/overhead.py``: a bare Celery app with one empty task.

Redis broker and Redis result backend, with the same delivery settings Switchyard uses
(acks late, reject on worker lost, prefetch one), so the comparison is fair. The worker runs
``celery -A bare_celery_app worker`` with ``bench/`` on ``PYTHONPATH``; the benchmark builds
its client side with :func:`make_bare_app` on the same URL.
"""

from __future__ import annotations

import os

from celery import Celery

BARE_QUEUE = "bench.bare"
BARE_TASK = "bench.noop"
REDIS_URL_ENV = "BENCH_BARE_REDIS_URL"


def plain_celery_app(name: str, redis_url: str, queue: str, result_expires: int) -> Celery:
    """A Celery app as a user of plain Celery sets it up, with Switchyard's delivery settings
    (acks late, reject on worker lost, prefetch one), Redis as broker and result backend."""
    celery_app = Celery(name, broker=redis_url, backend=redis_url)
    celery_app.conf.update(
        task_default_queue=queue,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        result_expires=result_expires,
        worker_hijack_root_logger=False,
    )
    return celery_app


def make_bare_app(redis_url: str) -> Celery:
    """A Celery app on ``redis_url`` (broker and result backend) with the empty task."""
    celery_app = plain_celery_app("bench_bare", redis_url, BARE_QUEUE, result_expires=600)

    @celery_app.task(name=BARE_TASK, shared=False)
    def noop() -> None:
        """Does nothing: the round trip is all Celery."""

    return celery_app


# The worker side: ``-A bare_celery_app`` finds ``app``. The benchmark passes the URL.
app = make_bare_app(os.environ.get(REDIS_URL_ENV, "redis://127.0.0.1:6379/11"))
