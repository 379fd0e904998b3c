"""The semantic cache checking its own hits: counts per namespace, and thresholds that rise.

Each check of a hit (a shadow call's answer compared with the cached one, or a caller's
``cache: wrong`` feedback) is counted in the namespace's hash as verified, and as disagreed
when the answers differ. The estimated false-hit rate is disagreed / verified. Once a
namespace has ``min_verified`` checks and its estimate is above ``false_hit_ceiling``, its
threshold rises by ``threshold_step`` (never above ``max_threshold``) and its counts start
again, so the next raise needs fresh evidence at the new threshold; lifetime totals stay for
the stats. The decision is one script on the namespace's hash, so two workers recording at
once cannot both raise on the same evidence. The counts of the tenant's tier (in the cache
stats hash) and of the tier over all tenants (for the metrics) ride the same round trip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog
from redis import Redis

from schemas.sections import CacheSettings
from workers.cache.namespaces import tier_of_namespace
from workers.keys import RedisKeys

log = structlog.get_logger("switchyard.semantic_cache")
TOP_NAMESPACES = 20

# KEYS[1]: the namespace's hash. ARGV: disagreed (0/1), min_verified, ceiling, step,
# max_threshold, default threshold, ttl_s. Returns {old threshold, new threshold, verified,
# disagreed} (the counts that decided; reset to 0 when the threshold rose).
RECORD_CHECK = """
local d = tonumber(ARGV[1])
local verified = redis.call('HINCRBY', KEYS[1], 'verified', 1)
local disagreed = redis.call('HINCRBY', KEYS[1], 'disagreed', d)
redis.call('HINCRBY', KEYS[1], 'total_verified', 1)
redis.call('HINCRBY', KEYS[1], 'total_disagreed', d)
redis.call('EXPIRE', KEYS[1], ARGV[7])
local old = tonumber(redis.call('HGET', KEYS[1], 'threshold') or ARGV[6])
local new = old
if verified >= tonumber(ARGV[2]) and disagreed / verified > tonumber(ARGV[3]) then
  new = math.min(old + tonumber(ARGV[4]), tonumber(ARGV[5]))
  if new > old then
    redis.call('HSET', KEYS[1], 'threshold', tostring(new), 'verified', 0, 'disagreed', 0)
  end
end
return {tostring(old), tostring(new), verified, disagreed}
"""


@dataclass(frozen=True)
class CheckRecorded:
    """What one check did to its namespace."""

    namespace: str
    agreed: bool
    verified: int
    disagreed: int
    old_threshold: float
    new_threshold: float

    @property
    def raised(self) -> bool:
        return self.new_threshold > self.old_threshold


def false_hit_rate(verified: int, disagreed: int) -> float:
    """disagreed / verified, 0 with no checks."""
    return round(disagreed / verified, 4) if verified else 0.0


def tenant_of_namespace(ns: str) -> str:
    return ns.split(":")[0]


class CacheVerification:
    """Records checks of semantic hits and reads them back for stats and metrics."""

    def __init__(self, redis: Redis, keys: RedisKeys, settings: CacheSettings) -> None:
        self.redis = redis
        self.keys = keys
        self.settings = settings
        self._record = redis.register_script(RECORD_CHECK)

    def record(self, ns: str, agreed: bool) -> CheckRecorded:
        """Count one check of a hit in ``ns``; raise the namespace's threshold if it is due."""
        s, tenant, tier = self.settings, tenant_of_namespace(ns), tier_of_namespace(ns)
        disagreed = 0 if agreed else 1
        stats, totals = self.keys.cache_stats(tenant), self.keys.cache_verification_totals
        ranking = self.keys.cache_verified_namespaces(tenant)
        args = [disagreed, s.min_verified, s.false_hit_ceiling, s.threshold_step, s.max_threshold]
        with self.redis.pipeline(transaction=False) as pipe:
            self._record(
                keys=[self.keys.semantic_verification(ns)],
                args=[*args, s.semantic_threshold, s.verification_ttl_s],
                client=pipe,
            )
            pipe.hincrby(stats, f"{tier}:semantic:verified", 1)
            pipe.hincrby(stats, f"{tier}:semantic:disagreed", disagreed)
            pipe.hincrby(totals, f"{tier}:verified", 1)
            pipe.hincrby(totals, f"{tier}:disagreed", disagreed)
            pipe.zincrby(ranking, 1, ns)
            pipe.expire(ranking, s.verification_ttl_s)
            (old, new, verified, counted), *_ = pipe.execute()
        outcome = CheckRecorded(
            ns, agreed, int(verified), int(counted), round(float(old), 4), round(float(new), 4)
        )
        if outcome.raised:
            self._raised(outcome)
        return outcome

    def _raised(self, outcome: CheckRecorded) -> None:
        self.redis.hincrby(
            self.keys.cache_verification_totals, f"{tier_of_namespace(outcome.namespace)}:raised", 1
        )
        log.warning(
            "semantic_threshold_raised",
            namespace=outcome.namespace,
            old=outcome.old_threshold,
            new=outcome.new_threshold,
            estimate=false_hit_rate(outcome.verified, outcome.disagreed),
            verified=outcome.verified,
            disagreed=outcome.disagreed,
        )

    def threshold(self, ns: str) -> float:
        """The threshold the namespace's lookups use now."""
        raw = self.redis.hget(self.keys.semantic_verification(ns), "threshold")
        return max(float(raw), self.settings.semantic_threshold) if raw else self.settings.semantic_threshold

    def namespaces(self, tenant_id: str, limit: int = TOP_NAMESPACES) -> dict[str, list[dict[str, Any]]]:
        """Per tier, the tenant's most checked namespaces (by hash, never the whole name)."""
        ranking = self.keys.cache_verified_namespaces(tenant_id)
        names = [n.decode() for n in self.redis.zrevrange(ranking, 0, limit - 1)]  # type: ignore[union-attr]
        with self.redis.pipeline(transaction=False) as pipe:
            for ns in names:
                pipe.hgetall(self.keys.semantic_verification(ns))
            rows = pipe.execute()
        found: dict[str, list[dict[str, Any]]] = {}
        gone = []
        for ns, raw in zip(names, rows, strict=True):
            if not raw:  # its checks expired
                gone.append(ns)
                continue
            found.setdefault(tier_of_namespace(ns), []).append(self._namespace_row(ns, raw))
        if gone:
            self.redis.zrem(ranking, *gone)
        return found

    def _namespace_row(self, ns: str, raw: dict[bytes, bytes]) -> dict[str, Any]:
        fields = {k.decode(): v.decode() for k, v in raw.items()}
        verified, disagreed = int(fields.get("total_verified", 0)), int(fields.get("total_disagreed", 0))
        threshold = max(float(fields.get("threshold", 0.0)), self.settings.semantic_threshold)
        return {
            "namespace": ns.rsplit(":", 1)[-1],
            "verified": verified,
            "disagreed": disagreed,
            "estimated_false_hit_rate": false_hit_rate(verified, disagreed),
            "threshold": round(threshold, 4),
            "verified_at_threshold": int(fields.get("verified", 0)),
            "disagreed_at_threshold": int(fields.get("disagreed", 0)),
        }

    def totals(self) -> dict[str, dict[str, int]]:
        """Per tier over every tenant: verified, disagreed and threshold raises (the metrics)."""
        raw: dict[bytes, bytes] = self.redis.hgetall(self.keys.cache_verification_totals)  # type: ignore[assignment]
        tiers: dict[str, dict[str, int]] = {}
        for name, value in raw.items():
            tier, _, field = name.decode().rpartition(":")
            tiers.setdefault(tier, {"verified": 0, "disagreed": 0, "raised": 0})[field] = int(value)
        return tiers
