"""Cache counters per tenant and tier: hits and misses of each kind, and the cost saved.

The semantic kind also counts its checks (``<tier>:semantic:verified|disagreed``, written by
workers/cache/verification.py) and shows the estimated false-hit rate they give.
"""

from __future__ import annotations

from typing import Any

from redis import Redis
from redis.client import Pipeline

from workers.keys import RedisKeys
from workers.metrics import definitions as metrics

KINDS = ("exact", "semantic")


class CacheStats:
    """Counters in one Redis hash per tenant; a lookup costs one pipelined write."""

    def __init__(self, redis: Redis, keys: RedisKeys) -> None:
        self.redis = redis
        self.keys = keys

    def record(self, tenant_id: str, tier: str, kind: str, hit: bool, saved_usd: float = 0.0) -> None:
        """Count one lookup; a hit also adds the cost of the call it saved."""
        with self.redis.pipeline(transaction=False) as pipe:
            self.count(pipe, tenant_id, tier, kind, hit, saved_usd)
            pipe.execute()

    def count(
        self, pipe: Pipeline, tenant_id: str, tier: str, kind: str, hit: bool, saved_usd: float
    ) -> None:
        """Queue the counting of one lookup on ``pipe``, to share its round trip."""
        self.count_many(pipe, tenant_id, tier, kind, int(hit), int(not hit), saved_usd if hit else 0.0)

    def count_many(
        self, pipe: Pipeline, tenant_id: str, tier: str, kind: str, hits: int, misses: int, saved_usd: float
    ) -> None:
        """Queue the counting of many lookups at once on ``pipe``; the process's metrics count them too."""
        _count_metrics(tier, kind, hits, misses, saved_usd)
        key = self.keys.cache_stats(tenant_id)
        if hits:
            pipe.hincrby(key, f"{tier}:{kind}:hits", hits)
        if misses:
            pipe.hincrby(key, f"{tier}:{kind}:misses", misses)
        if saved_usd:
            pipe.hincrbyfloat(key, f"{tier}:saved_usd", saved_usd)

    def read(self, tenant_id: str) -> dict[str, dict[str, Any]]:
        """Per tier: hits, misses and hit rate of each kind, and the saved cost."""
        raw: dict[Any, Any] = self.redis.hgetall(self.keys.cache_stats(tenant_id))  # type: ignore[assignment]
        counters = {k.decode(): float(v) for k, v in raw.items()}
        tiers: dict[str, dict[str, Any]] = {}
        for name, value in counters.items():
            tier, _, field = name.partition(":")
            tiers.setdefault(tier, {})[field] = value
        return {tier: self._row(fields) for tier, fields in tiers.items()}

    def empty_row(self) -> dict[str, Any]:
        return self._row({})

    @staticmethod
    def _row(fields: dict[str, float]) -> dict[str, Any]:
        row: dict[str, Any] = {"saved_usd": round(fields.get("saved_usd", 0.0), 8)}
        for kind in KINDS:
            hits, misses = int(fields.get(f"{kind}:hits", 0)), int(fields.get(f"{kind}:misses", 0))
            lookups = hits + misses
            rate = round(hits / lookups, 4) if lookups else 0.0
            row[kind] = {"hits": hits, "misses": misses, "hit_rate": rate}
        verified, disagreed = (
            int(fields.get("semantic:verified", 0)),
            int(fields.get("semantic:disagreed", 0)),
        )
        row["semantic"] |= {
            "verified": verified,
            "disagreed": disagreed,
            "estimated_false_hit_rate": round(disagreed / verified, 4) if verified else 0.0,
        }
        return row


def _count_metrics(tier: str, kind: str, hits: int, misses: int, saved_usd: float) -> None:
    if hits:
        metrics.cache_lookups.labels(tier, kind, "hit").inc(hits)
    if misses:
        metrics.cache_lookups.labels(tier, kind, "miss").inc(misses)
    if saved_usd:
        metrics.cache_savings_usd.labels(tier, kind).inc(saved_usd)
