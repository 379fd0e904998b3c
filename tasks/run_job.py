"""The ``switchyard.run_job`` task: one attempt of one job, by id."""

from __future__ import annotations

from typing import Any

import structlog
from celery import shared_task

from workers.job_runner import run_job as run_job_attempt
from workers.runtime import runtime_for

log = structlog.get_logger("switchyard.task")


@shared_task(name="switchyard.run_job", bind=True, acks_late=True, ignore_result=True)
def run_job(self: Any, job_id: str) -> None:
    """Run one attempt of the job; its row, not this message, carries the state."""
    try:
        rt = runtime_for(self.app)
        # The process's heartbeat renews the job's short lease while the attempt runs, so the
        # lease runs out soon after this process dies, however long the call (docs/operations.md).
        with rt.lease_heartbeat.holding(job_id):
            # A traced message carries the job's trace context in a header (workers/dispatch.py).
            run_job_attempt(rt, job_id, getattr(self.request, "traceparent", None))
    except Exception:
        # The task boundary: log and leave the row to its lease; the reconciler retries it.
        log.exception("run_job_crashed", job=job_id)
        raise
