"""Shapes of the cache endpoints."""

from __future__ import annotations

from pydantic import BaseModel


class KindStats(BaseModel):
    hits: int
    misses: int
    hit_rate: float
    entries: int
    bytes: int


class TierCacheStats(BaseModel):
    exact: KindStats
    semantic: KindStats
    saved_usd: float
    entries: int
    bytes: int


class CacheStatsOut(BaseModel):
    """Per tier of the caller's tenant."""

    tenant: str
    tiers: dict[str, TierCacheStats]


class Invalidated(BaseModel):
    deleted: int
