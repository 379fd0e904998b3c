"""First attempts made at once by a few threads of the process that announced the event.

This skips the webhook queue's hop (a Celery message and a worker waking up) on the path from
a job's completion to its receipt. The delivery row is written first and held for
``claim_s``, so if this process dies before the attempt, beat's sweep makes it later. When the
threads fall ``sender_backlog`` attempts behind (a slow receiver), further first attempts go
through the webhook queue instead, so a job worker never gathers an unbounded backlog.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import structlog

from workers.webhooks.delivery import Deliverer

log = structlog.get_logger("switchyard.webhooks")


class FirstAttemptSender:
    """A bounded pool of sender threads for first attempts."""

    def __init__(self, deliverer: Callable[[], Deliverer], threads: int, backlog: int) -> None:
        self.deliverer = deliverer
        self.backlog = backlog
        self.waiting = 0
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="webhook-sender")

    def try_send(self, delivery_id: str) -> bool:
        """Start the first attempt in a sender thread; False when they are too far behind."""
        with self.lock:
            if self.waiting >= self.backlog:
                return False
            self.waiting += 1
        self.pool.submit(self._attempt, delivery_id)
        return True

    def _attempt(self, delivery_id: str) -> None:
        try:
            self.deliverer().attempt(delivery_id, 0)
        except Exception as exc:  # a thread's last stop: the held row is retried by the sweep
            log.error("webhook_first_attempt_failed", delivery=delivery_id, error=repr(exc))
        finally:
            with self.lock:
                self.waiting -= 1
