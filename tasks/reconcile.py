"""The ``switchyard.reconcile`` beat task: repair orphaned and abandoned jobs."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import structlog
from celery import shared_task

from workers.reconciler import reconcile as reconcile_once
from workers.runtime import runtime_for

log = structlog.get_logger("switchyard.reconcile")


@shared_task(name="switchyard.reconcile", bind=True, ignore_result=True)
def reconcile(self: Any) -> dict[str, int]:
    """One reconciler pass; returns its counts."""
    report = asdict(reconcile_once(runtime_for(self.app)))
    if any(report.values()):
        log.info("reconciled", **report)
    return report
