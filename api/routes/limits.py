"""Rate limits and queues as they stand: ``GET /v1/limits``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from api.deps import Reader, ServicesDep
from api.keys import Principal
from api.services import Services
from schemas.limits import LimitsReport
from workers.ratelimit.policy import tenant_rpm_bucket, tenant_rpm_limits, tenant_running_bucket
from workers.ratelimit.report import limits_report

router = APIRouter(prefix="/v1/limits", tags=["limits"])


@router.get("", response_model=LimitsReport, summary="Rate limits, headroom, pauses, queues, drain times")
async def show_limits(services: ServicesDep, principal: Reader) -> dict[str, Any]:
    """Per (provider, model): the configured limits, the share in force (AIMD), what is used and
    left in the current window, calls in flight and any pause a provider asked for. Per tier:
    jobs queued by priority class, how fast the chain can take them, the estimated drain time
    and whether admission control refuses live jobs. Plus the caller's own tenant limits."""
    return await run_in_threadpool(_report, services, principal)


def _report(services: Services, principal: Principal) -> dict[str, Any]:
    settings, limiter = services.settings, services.limiter
    report = limits_report(settings, limiter, services.dispatcher)
    rpm = tenant_rpm_limits(settings.rate_limits, principal.rpm_limit)
    running_limits = services.tenant_limits.running(principal.tenant_id)
    submissions = limiter.snapshot(tenant_rpm_bucket(principal.tenant_id), rpm)
    running = limiter.snapshot(tenant_running_bucket(principal.tenant_id), running_limits)
    report["tenant"] = {
        "id": principal.tenant_id,
        "rpm": rpm.rpm,
        "window_s": rpm.window_s,
        "submissions_used": submissions.requests_used,
        "max_running_jobs": running_limits.concurrency,
        "running": running.in_flight,
    }
    return report
