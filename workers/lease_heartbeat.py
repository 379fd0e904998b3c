"""The lease heartbeat: one thread per worker process keeps its running jobs' leases alive.

A job's lease is short (``lease_s``, 20 s), so a dead worker's jobs are free again soon
after it died, whatever the length of their calls. While the process lives, a daemon thread
renews the leases of every job it is running in one UPDATE every ``lease_heartbeat_s``
(5 s): a write per process and beat, none per job. Tasks register the job id they run
(``holding``); nothing else on the job's path touches the database.

The thread starts with the first job a process runs, so it lives in the process that runs
the jobs: each prefork child after the fork, or the one process of a threads pool. A job held
longer than ``max_hold_s`` (the task's hard time limit) is no longer renewed: a task wedged
where no time limit reaches it (a threads pool has none) loses its lease, and the reconciler
runs the job again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import structlog
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from workers import store

log = structlog.get_logger("switchyard.lease")


class LeaseHeartbeat:
    """The jobs this process is running, and the thread that renews their leases."""

    def __init__(self, engine: Engine, lease_s: float, period_s: float, max_hold_s: float) -> None:
        self.engine = engine
        self.lease_s = lease_s
        self.period_s = period_s
        self.max_hold_s = max_hold_s
        self._held: dict[str, float] = {}  # job id -> when this process took it (monotonic)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @contextmanager
    def holding(self, job_id: str) -> Iterator[None]:
        """Keep ``job_id``'s lease alive while the block runs (if this process claims it)."""
        with self._lock:
            self._held[job_id] = time.monotonic()
            self._ensure_running()
        try:
            yield
        finally:
            with self._lock:
                self._held.pop(job_id, None)

    def held(self) -> list[str]:
        """The job ids whose leases the next beat renews."""
        oldest = time.monotonic() - self.max_hold_s
        with self._lock:
            return [job_id for job_id, since in self._held.items() if since >= oldest]

    def beat(self) -> int:
        """Renew the held jobs' leases now, in one UPDATE; how many rows it renewed."""
        job_ids = self.held()
        return store.renew_leases(self.engine, job_ids, self.lease_s) if job_ids else 0

    def stop(self) -> None:
        """Stop the thread (tests; a worker process just exits)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.period_s + 5)

    def _ensure_running(self) -> None:
        # After a fork the parent's thread object survives but not its thread: is_alive() is
        # False in the child, which then starts its own.
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="lease-heartbeat", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                self.beat()
            except SQLAlchemyError as exc:
                # The next beat tries again; the lease outlasts a missed beat (lease_s >= 2 beats).
                log.warning("lease_heartbeat_failed", error=str(exc))
