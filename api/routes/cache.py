"""The result cache of the caller's tenant: stats and invalidation."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.concurrency import run_in_threadpool

from api.deps import Admin, Reader, ServicesDep
from api.job_limits import known_tier
from schemas.cache import CacheStatsOut, Invalidated

router = APIRouter(prefix="/v1/cache", tags=["cache"])
TierName = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
CacheKey = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="A job's `cache.key`.")]


@router.get("/stats", response_model=CacheStatsOut, summary="Cache hits, misses, savings and size")
async def cache_stats(services: ServicesDep, principal: Reader) -> dict[str, Any]:
    """Per tier of the caller's tenant: exact and semantic hits, misses and hit rate, the cost
    the hits saved, and the entries and memory they take."""
    return await run_in_threadpool(services.results.report, principal.tenant_id)


@router.delete("", response_model=Invalidated, summary="Drop every cached answer of the tenant")
def invalidate_tenant(services: ServicesDep, principal: Admin) -> dict[str, int]:
    return {"deleted": services.results.invalidate(principal.tenant_id)}


@router.delete(
    "/tiers/{tier}", response_model=Invalidated, summary="Drop the tenant's cached answers of a tier"
)
def invalidate_tier(tier: TierName, services: ServicesDep, principal: Admin) -> dict[str, int]:
    known_tier(services.settings, tier)
    return {"deleted": services.results.invalidate(principal.tenant_id, tier)}


@router.delete(
    "/tiers/{tier}/entries/{key}", response_model=Invalidated, summary="Drop one cached answer by its key"
)
def invalidate_entry(
    tier: TierName, key: CacheKey, services: ServicesDep, principal: Admin
) -> dict[str, int]:
    known_tier(services.settings, tier)
    return {"deleted": services.results.invalidate(principal.tenant_id, tier, key)}
