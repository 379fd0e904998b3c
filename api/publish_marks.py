"""Batched ``published_at`` marks: one UPDATE per interval instead of one per job.

A mark only tells the reconciler that a job's message went out. If the process dies with
marks pending, the reconciler publishes those jobs again after ``orphan_grace_s``; the
duplicate message is harmless because a claim succeeds only once.
"""

from __future__ import annotations

import threading

import structlog
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from workers import store

log = structlog.get_logger("switchyard.publish_marks")


class PublishMarks:
    """Collects published job ids and writes them from a background thread."""

    def __init__(self, engine: Engine, interval_s: float = 0.2) -> None:
        self._engine = engine
        self._interval_s = interval_s
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, job_id: str) -> None:
        """Queue a mark; the writer thread starts on first use."""
        with self._lock:
            self._pending.append(job_id)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="publish-marks", daemon=True)
                self._thread.start()

    def flush(self) -> None:
        """Write every pending mark now."""
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            store.mark_published(self._engine, batch)
        except SQLAlchemyError as exc:  # the reconciler republishes them; nothing is lost
            log.warning("publish_marks_failed", jobs=len(batch), error=str(exc))

    def close(self) -> None:
        """Stop the writer and flush what is left."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval_s):
            self.flush()
