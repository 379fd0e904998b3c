"""The cache as the API and the workers use it: look up, record, store.

A hit becomes a finished job of its own: ``status: succeeded``, the cached result,
``cost_usd: 0`` and no tokens (no provider was called), and ``cache.hit`` / ``source_job``
naming where the answer came from. The cost the hit saved is counted in the tenant's stats.
A semantic hit also names the entry that answered (``cache.entry``: namespace, entry id and
the hash of the cached question), for its shadow check and for feedback
(workers/cache/verification.py, workers/cache/feedback.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from redis import Redis
from redis.client import Pipeline

from schemas.sections import CacheSettings
from schemas.settings import Settings
from schemas.tables import Job, utcnow
from workers.cache.exact import ExactCache, decode_entry
from workers.cache.matching import SemanticMatcher
from workers.cache.misses import MissCounter
from workers.cache.namespaces import conversation_text, namespace, serves
from workers.cache.pair_check import PairCheck
from workers.cache.semantic import SemanticCache, SemanticHit, text_sha
from workers.cache.stats import CacheStats
from workers.cache.verification import CacheVerification
from workers.keys import RedisKeys
from workers.providers.embedder import Embedder


@dataclass(frozen=True)
class CachedResult:
    """A stored answer and where it came from."""

    source_job: str
    result: dict[str, Any]
    model: str | None
    provider: str | None
    cost_usd: float
    hit: str = "exact"
    similarity: float | None = None
    entry: dict[str, str] | None = None  # a semantic hit's entry: namespace, id, question (hash)

    def to_entry(self) -> dict[str, Any]:
        return {
            "source_job": self.source_job,
            "result": self.result,
            "model": self.model,
            "provider": self.provider,
            "cost_usd": self.cost_usd,
        }

    @classmethod
    def from_entry(
        cls, entry: dict[str, Any], hit: str = "exact", similarity: float | None = None
    ) -> CachedResult:
        return cls(
            source_job=entry["source_job"],
            result=entry["result"],
            model=entry.get("model"),
            provider=entry.get("provider"),
            cost_usd=float(entry.get("cost_usd", 0.0)),
            hit=hit,
            similarity=similarity,
        )

    @classmethod
    def from_semantic_hit(cls, ns: str, hit: SemanticHit) -> CachedResult:
        """A semantic hit, naming the entry that answered."""
        entry = {"namespace": ns, "id": hit.entry_id, "question": text_sha(hit.entry["text"])}
        return replace(cls.from_entry(hit.entry, "semantic", hit.similarity), entry=entry)

    def cache_info(self, cache: dict[str, Any]) -> dict[str, Any]:
        """The job's ``cache`` object with this hit filled in; ``saved_usd`` is what the call that
        made the answer cost, the cost this hit avoided (the usage rollups count it)."""
        info = {
            **cache,
            "hit": self.hit,
            "source_job": self.source_job,
            "similarity": self.similarity,
            "saved_usd": self.cost_usd,
        }
        return info if self.entry is None else {**info, "entry": self.entry}

    def as_job_fields(self, cache: dict[str, Any]) -> dict[str, Any]:
        """The columns of a job answered by this hit."""
        now = utcnow()
        return {
            "status": "succeeded",
            "result": self.result,
            "model": self.model,
            "provider": self.provider,
            "cost_usd": 0.0,
            "latency_ms": 0.0,
            "cache": self.cache_info(cache),
            "started_at": now,
            "finished_at": now,
        }


def semantic_entry(job: Job) -> dict[str, str] | None:
    """The entry that answered the job, if a semantic hit did."""
    cache = job.cache or {}
    entry = cache.get("entry")
    if cache.get("hit") != "semantic" or not isinstance(entry, dict):
        return None
    if not all(isinstance(entry.get(field), str) for field in ("namespace", "id", "question")):
        return None
    return entry if entry["namespace"].startswith(f"{job.tenant_id}:") else None


class ResultCache:
    """Exact and semantic lookups and stores, with the stats of each."""

    def __init__(
        self,
        redis: Redis,
        keys: RedisKeys,
        semantic: SemanticCache | None = None,
        settings: CacheSettings | None = None,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.exact = ExactCache(redis, keys)
        self.stats = CacheStats(redis, keys)
        self.misses = MissCounter(redis, keys)
        self.semantic = semantic
        self.verification = CacheVerification(redis, keys, settings or CacheSettings.model_validate({}))

    def lookup_similar(
        self, tenant_id: str, tier: str, request: dict[str, Any], limit: int | None = None
    ) -> tuple[CachedResult | None, Any]:
        """The semantic hit for a request, counted; and what :meth:`store_similar` needs later.

        ``limit`` is the length limit the request's call would have: a hit must fit it.
        """
        assert self.semantic is not None
        ns, text = namespace(tenant_id, tier, request), conversation_text(request)
        vector = self.semantic.embed(text)
        hit = self.semantic.lookup(ns, text, vector, lambda entry: serves(entry["result"], limit))
        found = CachedResult.from_semantic_hit(ns, hit) if hit else None
        self.stats.record(tenant_id, tier, "semantic", found is not None, found.cost_usd if found else 0.0)
        return found, (ns, text, vector)

    def store_similar(self, probe: Any, result: CachedResult, ttl_s: int) -> None:
        assert self.semantic is not None
        ns, text, vector = probe
        self.semantic.store(ns, text, vector, result.to_entry(), ttl_s)

    def queue_lookup(self, pipe: Pipeline, tenant_id: str, tier: str, key: str) -> None:
        """Queue the read of ``key``'s exact entry on the caller's ``pipe`` (the API's tenant rate
        check): its reply goes to :meth:`lookup`, so the read costs no round trip of its own."""
        self.exact.queue_get(pipe, tenant_id, tier, key)

    def lookup(
        self, tenant_id: str, tier: str, key: str, request: dict[str, Any], raw: bytes | None
    ) -> CachedResult | None:
        """The exact hit for ``key``, from ``raw``, the reply of :meth:`queue_lookup`'s read.

        A miss is counted here (also by request); a hit is counted by :meth:`count_hit`, which
        the API runs once it has answered, so a hit's answer waits for no counting."""
        entry = decode_entry(raw)
        if entry:
            return CachedResult.from_entry(entry)
        with self.redis.pipeline(transaction=False) as pipe:  # the counters share one round trip
            self.stats.count(pipe, tenant_id, tier, "exact", False, 0.0)
            self.misses.count(pipe, tenant_id, tier, key, request)
            pipe.execute()
        return None

    def count_hit(self, tenant_id: str, tier: str, hit: CachedResult) -> None:
        """Count an exact hit :meth:`lookup` found, and the cost it saved."""
        with self.redis.pipeline(transaction=False) as pipe:
            self.stats.count(pipe, tenant_id, tier, "exact", True, hit.cost_usd)
            pipe.execute()

    def lookup_many(
        self, tenant_id: str, tier: str, probes: list[tuple[str, dict[str, Any]]]
    ) -> list[CachedResult | None]:
        """:meth:`lookup` for many (key, request) pairs of one tier (a batch's lines): one MGET
        per thousand keys and the counters summed in one round trip.

        Misses are counted in the stats but not in the per-request miss ranking: a batch's
        lines are one-off documents, and keeping each body for suggestions would fill Redis.
        """
        entries = self.exact.get_many(tenant_id, tier, [key for key, _ in probes])
        found = [CachedResult.from_entry(entry) if entry else None for entry in entries]
        hits = [hit for hit in found if hit is not None]
        with self.redis.pipeline(transaction=False) as pipe:
            self.stats.count_many(
                pipe,
                tenant_id,
                tier,
                "exact",
                len(hits),
                len(found) - len(hits),
                sum(h.cost_usd for h in hits),
            )
            pipe.execute()
        return found

    def suggestions(self, tenant_id: str, hours: int = 24, limit: int = 20) -> list[dict[str, Any]]:
        """The requests that missed most in the last ``hours``, with the savings a cached
        answer would have brought (misses after the first, at the cost of the cached answer
        when there is one)."""
        ranked = self.misses.top(tenant_id, hours, limit)
        for row in ranked:
            entry = self.exact.get(tenant_id, row["tier"], row["key"])
            cost = float(entry["cost_usd"]) if entry else None
            row["cost_per_call_usd"] = cost
            row["estimated_savings_usd"] = round(cost * (row["misses"] - 1), 8) if cost is not None else None
        return ranked

    def store(self, tenant_id: str, tier: str, key: str, result: CachedResult, ttl_s: int) -> None:
        self.exact.put(tenant_id, tier, key, result.to_entry(), ttl_s)

    def invalidate(self, tenant_id: str, tier: str | None = None, key: str | None = None) -> int:
        """Drop the tenant's entries (all, a tier's, or one exact key's); the number dropped."""
        dropped = self.exact.invalidate(tenant_id, tier, key)
        if key is None and self.semantic is not None:
            dropped += self.semantic.invalidate(tenant_id, tier)
        return dropped

    def report(self, tenant_id: str) -> dict[str, Any]:
        """Counters and size per tier, for ``GET /v1/cache/stats``."""
        counters = self.stats.read(tenant_id)
        exact = self.exact.usage(tenant_id)
        similar = self.semantic.usage(tenant_id) if self.semantic is not None else {}
        checked = self.verification.namespaces(tenant_id)
        none = {"entries": 0, "bytes": 0}
        tiers = {}
        for tier in sorted(set(counters) | set(exact) | set(similar) | set(checked)):
            row = counters.get(tier, self.stats.empty_row())
            row["exact"] |= exact.get(tier, none)
            row["semantic"] |= similar.get(tier, none)
            row["semantic"]["namespaces"] = checked.get(tier, [])
            row["entries"] = row["exact"]["entries"] + row["semantic"]["entries"]
            row["bytes"] = row["exact"]["bytes"] + row["semantic"]["bytes"]
            tiers[tier] = row
        return {"tenant": tenant_id, "tiers": tiers}


def build_result_cache(settings: Settings, redis: Redis, keys: RedisKeys) -> ResultCache:
    """The cache with its semantic half; the embedding model loads on the first lookup."""
    embedder = Embedder()
    matcher = SemanticMatcher(settings.cache.semantic_threshold, PairCheck(embedder))
    semantic = SemanticCache(redis, keys, embedder, matcher)
    return ResultCache(redis, keys, semantic, settings.cache)
