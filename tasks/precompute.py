"""The ``switchyard.precompute`` beat task: run the known queries that are due."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import structlog
from celery import shared_task

from workers.precompute import run_due
from workers.runtime import runtime_for

log = structlog.get_logger("switchyard.precompute")


@shared_task(name="switchyard.precompute", bind=True, ignore_result=True)
def precompute(self: Any) -> dict[str, int]:
    """One scan of the known queries; returns its counts."""
    report = asdict(run_due(runtime_for(self.app)))
    if report["ran"] or report["unknown_tier"]:
        log.info("precomputed", **report)
    return report
