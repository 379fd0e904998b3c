"""Rate limits and queues as they stand: ``GET /v1/limits``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from api.deps import Reader, ServicesDep
from api.limits_view import caller_report
from schemas.limits import LimitsReport

router = APIRouter(prefix="/v1/limits", tags=["limits"])


@router.get("", response_model=LimitsReport, summary="Your limits and backlog; every queue for admin keys")
async def show_limits(services: ServicesDep, principal: Reader) -> dict[str, Any]:
    """Any key: its tenant's limits (submissions per window and their use, the running-jobs cap
    and the jobs running) and its backlog, the tenant's queued and running jobs per tier.

    Admin keys also get the global figures, which count every tenant's work: per (provider,
    model) the configured limits, the share in force (AIMD), what is used and left in the
    window, calls in flight and any pause a provider asked for; per tier the jobs queued by
    priority class, the drain rate and time, and whether admission refuses live jobs. For any
    other key ``models`` and ``tiers`` are null."""
    return await run_in_threadpool(caller_report, services, principal)
