"""The ``switchyard.retry_webhooks`` beat task: publish the webhook attempts that are due."""

from __future__ import annotations

from typing import Any

import structlog
from celery import shared_task

from workers.runtime import runtime_for
from workers.webhooks.sweep import publish_due

log = structlog.get_logger("switchyard.webhooks")


@shared_task(name="switchyard.retry_webhooks", bind=True, ignore_result=True)
def retry_webhooks(self: Any) -> int:
    """One sweep; how many attempts it published."""
    published = publish_due(runtime_for(self.app).outcomes.webhooks)
    if published:
        log.info("webhook_retries_published", count=published)
    return published
