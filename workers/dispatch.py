"""Publishing jobs to their tier queues; the message is only the job id."""

from __future__ import annotations

from celery import Celery

from schemas.settings import queue_name

RUN_JOB_TASK = "switchyard.run_job"


def publish_job(
    celery_app: Celery, job_id: str, tier: str, priority: str, countdown: float | None = None
) -> None:
    """Put the job's id on ``tier.<tier>.<priority>``."""
    celery_app.send_task(
        RUN_JOB_TASK,
        args=[job_id],
        queue=queue_name(tier, priority),
        countdown=countdown if countdown else None,
    )
