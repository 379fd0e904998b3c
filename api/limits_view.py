"""What ``GET /v1/limits`` shows a caller.

Every key sees its own tenant: the limits that apply to it (submissions per window, running
jobs) and its backlog (its jobs not yet ended, per tier). The global figures (each model's
use and headroom, each tier's queue depth and drain time, which sum every tenant's work) are
for admin and platform keys only: a tenant learns nothing there about other tenants' traffic. The active
kill switches shown are those that can stop the caller's calls (every one for the platform admin).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from api.keys import Principal
from api.services import Services
from schemas.kill_switches import KillSwitchPublic
from schemas.settings import PRIORITIES
from workers import kill_switches
from workers.ratelimit.policy import tenant_rpm_bucket, tenant_rpm_limits, tenant_running_bucket
from workers.ratelimit.report import limits_report
from workers.store import JOBS

OPEN = ("queued", "running")


def caller_report(services: Services, principal: Principal) -> dict[str, Any]:
    """The report for this key: its tenant's part, plus the global part for an admin key."""
    report: dict[str, Any] = {
        "window_s": services.settings.rate_limits.window_s,
        "models": None,
        "tiers": None,
    }
    if principal.allows("admin") or principal.is_platform_admin:
        report.update(limits_report(services.settings, services.limiter, services.dispatcher))
    report["tenant"] = tenant_limits(services, principal)
    report["backlog"] = tenant_backlog(services.engine, principal.tenant_id)
    whose = None if principal.is_platform_admin else principal.tenant_id
    applying = kill_switches.applying_to(services.engine, whose)
    report["kill_switches"] = [KillSwitchPublic.from_row(row) for row in applying]
    return report


def tenant_limits(services: Services, principal: Principal) -> dict[str, Any]:
    """The caller's tenant: its submission rate and running-jobs cap, and its use of each."""
    settings, limiter = services.settings, services.limiter
    rpm = tenant_rpm_limits(settings.rate_limits, principal.rpm_limit)
    running_limits = services.tenant_limits.running(principal.tenant_id)
    submissions = limiter.snapshot(tenant_rpm_bucket(principal.tenant_id), rpm)
    running = limiter.snapshot(tenant_running_bucket(principal.tenant_id), running_limits)
    return {
        "id": principal.tenant_id,
        "rpm": rpm.rpm,
        "window_s": rpm.window_s,
        "submissions_used": submissions.requests_used,
        "max_running_jobs": running_limits.concurrency,
        "running": running.in_flight,
    }


def tenant_backlog(engine: Engine, tenant_id: str) -> list[dict[str, Any]]:
    """The tenant's jobs that have not ended, per tier: queued by priority class, and running."""
    query = (
        select(JOBS.c.tier, JOBS.c.priority, JOBS.c.status, func.count())
        .where(JOBS.c.tenant_id == tenant_id, JOBS.c.status.in_(OPEN))
        .group_by(JOBS.c.tier, JOBS.c.priority, JOBS.c.status)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    tiers: dict[str, dict[str, Any]] = {}
    for tier, priority, status, count in rows:
        entry = tiers.setdefault(tier, {"tier": tier, "queued": dict.fromkeys(PRIORITIES, 0), "running": 0})
        if status == "running":
            entry["running"] += count
        else:
            entry["queued"][priority] = entry["queued"].get(priority, 0) + count
    return [tiers[name] for name in sorted(tiers)]
