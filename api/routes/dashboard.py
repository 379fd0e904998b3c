"""The dashboard: ``GET /v1/dashboard`` (the figures), ``GET /v1/jobs/{id}/timeline`` (a job's page
data), and the pages themselves, ``/dashboard`` and ``/dashboard/jobs/{id}``, with their assets.

The pages are static files of this package (api/static/): no build step, nothing loaded from
elsewhere (their Content-Security-Policy allows only this origin). They ask for an API key
once, keep it in the tab's sessionStorage, and call the JSON routes with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from api.dashboard_data import dashboard
from api.deps import Reader, ServicesDep
from api.job_timeline import job_timeline
from schemas.dashboard import Dashboard, JobTimeline
from schemas.errors import NotFound

router = APIRouter(tags=["dashboard"])
STATIC = Path(__file__).resolve().parent.parent / "static"
ASSETS = {
    "dashboard.js": "text/javascript",
    "job.js": "text/javascript",
    "common.js": "text/javascript",
    "dashboard.css": "text/css",
}
# Only this origin: a page that tried to load anything from elsewhere would be refused (and
# the browser test would see the console error).
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
    "Cache-Control": "no-cache",
    "Referrer-Policy": "no-referrer",
}
JobId = Annotated[str, PathParam(max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="`job_...`.")]


@router.get("/v1/dashboard", response_model=Dashboard, summary="The dashboard's figures")
async def show_dashboard(services: ServicesDep, principal: Reader) -> Dashboard:
    """What the key may see at a glance: jobs per second, queues and drain times, latency
    percentiles per model, error and 429 rates, cache hits and savings, spend today against the
    budgets, limiter headroom, webhook dead letters, active kill switches and the latest failed
    jobs. A platform admin's key sees every tenant's figures; admin and platform keys also get
    every tier's queue and every model's headroom (as ``GET /v1/limits``)."""
    return await run_in_threadpool(dashboard, services, principal)


@router.get(
    "/v1/jobs/{job_id}/timeline",
    response_model=JobTimeline,
    responses={404: {"description": "No such job for this tenant."}},
    summary="A job's timeline",
)
async def show_timeline(job_id: JobId, services: ServicesDep, principal: Reader) -> JobTimeline:
    """The job's life: submitted, routed, queued, claimed, each attempt (model, latency,
    outcome), a cache hit, its end and its webhook deliveries; with its request and result."""
    return await run_in_threadpool(job_timeline, services, principal, job_id)


@router.get("/dashboard", include_in_schema=False)
async def dashboard_page() -> FileResponse:
    return FileResponse(STATIC / "dashboard.html", media_type="text/html", headers=PAGE_HEADERS)


@router.get("/dashboard/jobs/{job_id}", include_in_schema=False)
async def job_page(job_id: JobId) -> FileResponse:
    return FileResponse(STATIC / "job.html", media_type="text/html", headers=PAGE_HEADERS)


@router.get("/dashboard/assets/{name}", include_in_schema=False)
async def dashboard_asset(name: str) -> FileResponse:
    if name not in ASSETS:
        raise NotFound(f"No dashboard asset {name!r}.")
    return FileResponse(STATIC / name, media_type=ASSETS[name], headers={"Cache-Control": "no-cache"})
