"""The ``switchyard.poll_provider_batches`` beat task: send due provider batches, merge ended ones."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import structlog
from celery import shared_task

from workers.provider_batches.lane import run_pass
from workers.runtime import runtime_for

log = structlog.get_logger("switchyard.provider_batches")


@shared_task(name="switchyard.poll_provider_batches", bind=True, ignore_result=True)
def poll_provider_batches(self: Any) -> dict[str, int]:
    """One pass of the provider batch lane; returns its counts."""
    report = asdict(run_pass(runtime_for(self.app)))
    if any(report.values()):
        log.info("provider_batches_pass", **report)
    return report
