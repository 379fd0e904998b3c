"""A job's page (``GET /v1/jobs/{id}/timeline``): its life as a timeline, its webhook deliveries,
its request and result.

The attempts come from the job's ``attempt_log``; their times from the usage rows the workers
wrote as each call settled (``ix_usage_job_id``); the deliveries from ``webhook_deliveries``
(``ix_webhook_deliveries_job``). A platform admin may look at any tenant's job, but sees its
request and result only for its own tenant's: the timeline is operations data, the content is
the tenant's.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from api.keys import Principal
from api.services import Services
from schemas.dashboard import JobTimeline
from schemas.tables import Job
from workers import store
from workers.dashboard_queries import DELIVERIES
from workers.usage_sources import USAGE

DELIVERIES_SHOWN = 50
_DELIVERY_FIELDS = (
    "id",
    "event_type",
    "url",
    "status",
    "attempts",
    "last_status_code",
    "last_error",
    "last_response_ms",
    "created_at",
    "last_attempt_at",
    "next_attempt_at",
)


def mask_for_display(job: Job) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The job's request and result as a page may show them.

    The hook for PII masking (issue 20): today it returns them unchanged; once masking exists
    this is the one place the dashboard's content passes through.
    """
    return job.request, job.result


def job_timeline(services: Services, principal: Principal, job_id: str) -> JobTimeline:
    """The job's page data; NotFound unless the key's tenant owns it or the key is a platform admin's."""
    if principal.is_platform_admin:
        job = store.load_job(services.engine, job_id)
        if job is None:  # the same 404 as another tenant's job
            store.read_job(services.engine, principal.tenant_id, job_id)
    else:
        job = store.read_job(services.engine, principal.tenant_id, job_id)
    assert job is not None
    shown = job.tenant_id == principal.tenant_id
    request, result = mask_for_display(job) if shown else (None, None)
    with services.engine.connect() as connection:
        calls = connection.execute(
            select(USAGE.c.attempt, USAGE.c.created_at, USAGE.c.latency_ms).where(USAGE.c.job_id == job.id)
        ).all()
        deliveries = connection.execute(
            select(*(DELIVERIES.c[name] for name in _DELIVERY_FIELDS))
            .where(DELIVERIES.c.job_id == job.id)
            .order_by(DELIVERIES.c.created_at)
            .limit(DELIVERIES_SHOWN)
        ).mappings()
        delivery_rows = [dict(row) for row in deliveries]
    error = {"code": job.error_code, "message": job.error_message or ""} if job.error_code else None
    return JobTimeline.model_validate(
        {
            "id": job.id,
            "tenant_id": job.tenant_id,
            "tier": job.tier,
            "priority": job.priority,
            "status": job.status,
            "model": job.model,
            "provider": job.provider,
            "cost_usd": round(job.cost_usd, 8),
            "latency_ms": job.latency_ms,
            "attempts": job.attempts,
            "cache": job.cache,
            "routing": job.routing,
            "error": error,
            "events": events(job, {call.attempt: call for call in calls}, delivery_rows),
            "deliveries": delivery_rows,
            "content_shown": shown,
            "request": request,
            "result": result,
        }
    )


def events(job: Job, calls: dict[int, Any], deliveries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The job's moments, oldest first (a moment without a time goes last)."""
    found: list[dict[str, Any]] = [{"at": job.created_at, "kind": "submitted", "title": "Submitted"}]
    found[0]["detail"] = {"tier": job.tier, "priority": job.priority, "cache_mode": job.cache_mode}
    if job.routing:
        routed = f"Routed {job.routing.get('from', '?')} -> {job.routing.get('to', job.tier)}"
        found.append({"at": job.created_at, "kind": "routed", "title": routed, "detail": job.routing})
    latest = " (the latest time)" if job.attempts > 1 else ""  # a retry publishes and claims again
    if job.published_at:
        found.append(
            {"at": job.published_at, "kind": "queued", "title": f"Queued on tier {job.tier}{latest}"}
        )
    if job.started_at:
        found.append({"at": job.started_at, "kind": "started", "title": f"Claimed by a worker{latest}"})
    found += [_attempt(job, entry, calls.get(entry.get("attempt", -1))) for entry in job.attempt_log or []]
    if job.cache and job.cache.get("hit"):
        title = f"Answered from the {job.cache['hit']} cache"
        found.append(
            {"at": job.finished_at or job.created_at, "kind": "cache", "title": title, "detail": job.cache}
        )
    if job.finished_at:
        title = job.status.capitalize() + (f" ({job.error_code})" if job.error_code else "")
        found.append(
            {"at": job.finished_at, "kind": "ended", "title": title, "detail": {"status": job.status}}
        )
    for delivery in deliveries:
        title = (
            f"Webhook {delivery['event_type']}: {delivery['status']} after {delivery['attempts']} attempt(s)"
        )
        detail = {key: delivery[key] for key in ("id", "url", "last_status_code", "last_error", "attempts")}
        found.append(
            {"at": delivery["last_attempt_at"] or delivery["created_at"], "kind": "webhook", "title": title}
            | {"detail": detail}
        )
    return sorted(found, key=lambda event: (event["at"] is None, event["at"] or job.created_at))


def _attempt(job: Job, entry: dict[str, Any], call: Any) -> dict[str, Any]:
    """An attempt: it started ``latency_ms`` before its usage row was written, if there is one
    (never before the job was submitted: clocks of the API and the workers differ a little)."""
    at = None
    if call is not None:
        at = max(job.created_at, call.created_at - timedelta(milliseconds=float(call.latency_ms or 0)))
    model, provider = entry.get("model"), entry.get("provider")
    title = f"Attempt {entry.get('attempt')}: {model} via {provider} -> {entry.get('outcome')}"
    return {"at": at, "kind": "attempt", "title": title, "detail": entry}
