"""The ``switchyard.deliver_webhook`` task: one attempt of one webhook delivery."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from workers.runtime import runtime_for


@shared_task(name="switchyard.deliver_webhook", bind=True, ignore_result=True)
def deliver_webhook(self: Any, delivery_id: str, attempts: int) -> str:
    """Make the attempt after ``attempts`` (a stale or duplicate message does nothing)."""
    return runtime_for(self.app).outcomes.webhooks.deliverer.attempt(delivery_id, attempts)
