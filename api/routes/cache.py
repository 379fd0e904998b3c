"""The result cache of the caller's tenant: stats and invalidation (each one an audit entry)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool

from api.deps import Admin, Reader, ServicesDep, actor_of
from api.job_limits import known_tier
from api.keys import Principal
from schemas.cache import CacheStatsOut, Invalidated
from workers import audit
from workers.db import session_scope

router = APIRouter(prefix="/v1/cache", tags=["cache"])
TierName = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
CacheKey = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="A job's `cache.key`.")]


@router.get("/stats", response_model=CacheStatsOut, summary="Cache hits, misses, savings and size")
async def cache_stats(services: ServicesDep, principal: Reader) -> dict[str, Any]:
    """Per tier of the caller's tenant: exact and semantic hits, misses and hit rate, the cost
    the hits saved, and the entries and memory they take."""
    return await run_in_threadpool(services.results.report, principal.tenant_id)


@router.delete("", response_model=Invalidated, summary="Drop every cached answer of the tenant")
def invalidate_tenant(request: Request, services: ServicesDep, principal: Admin) -> dict[str, int]:
    deleted = services.results.invalidate(principal.tenant_id)
    return _cleared(request, services, principal, deleted)


@router.delete(
    "/tiers/{tier}", response_model=Invalidated, summary="Drop the tenant's cached answers of a tier"
)
def invalidate_tier(
    tier: TierName, request: Request, services: ServicesDep, principal: Admin
) -> dict[str, int]:
    known_tier(services.settings, tier)
    deleted = services.results.invalidate(principal.tenant_id, tier)
    return _cleared(request, services, principal, deleted, tier)


@router.delete(
    "/tiers/{tier}/entries/{key}", response_model=Invalidated, summary="Drop one cached answer by its key"
)
def invalidate_entry(
    tier: TierName, key: CacheKey, request: Request, services: ServicesDep, principal: Admin
) -> dict[str, int]:
    known_tier(services.settings, tier)
    deleted = services.results.invalidate(principal.tenant_id, tier, key)
    return _cleared(request, services, principal, deleted, tier, key)


def _cleared(
    request: Request,
    services: ServicesDep,
    principal: Principal,
    deleted: int,
    tier: str | None = None,
    key: str | None = None,
) -> dict[str, int]:
    """The answer, after the audit entry (``cache.cleared``) of an invalidation that happened
    (in Redis: there is no transaction to share with it)."""
    after = {"tier": tier, "key": key, "deleted": deleted}
    with session_scope(services.engine) as session:
        actor = actor_of(request, principal)
        audit.record(session, actor, "cache.cleared", "cache", tier or "", principal.tenant_id, after=after)
    return {"deleted": deleted}
