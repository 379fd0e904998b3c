"""The checks' counts, the thresholds they raise and the negatives of feedback, on real Redis
with real MiniLM embeddings; and their Prometheus export."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from redis import Redis

from schemas.sections import CacheSettings
from workers.cache.matching import SemanticMatcher
from workers.cache.metrics import SemanticChecksCollector
from workers.cache.namespaces import conversation_text, namespace
from workers.cache.semantic import SemanticCache, text_sha
from workers.cache.verification import CacheVerification
from workers.keys import RedisKeys
from workers.providers.embedder import Embedder

STORED = "How do I reset my password?"
PARAPHRASE = "What's the way to reset my password?"
ANSWER = {"source_job": "job_src", "result": {"choices": []}, "model": "emu-a", "provider": "emulator"}
SETTINGS = {
    "semantic_threshold": 0.85,
    "min_verified": 2,
    "false_hit_ceiling": 0.4,
    "threshold_step": 0.05,
    "max_threshold": 0.92,
}


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture
def parts(redis_url: str, embedder: Embedder) -> Iterator[tuple[SemanticCache, CacheVerification]]:
    redis, keys = Redis.from_url(redis_url), RedisKeys(f"checks{uuid.uuid4().hex[:8]}")
    cache = SemanticCache(redis, keys, embedder, SemanticMatcher(SETTINGS["semantic_threshold"]))
    yield cache, CacheVerification(redis, keys, CacheSettings.model_validate(SETTINGS))
    for key in redis.scan_iter(f"{keys.prefix}:*"):
        redis.delete(key)
    redis.close()


def ns_of(tenant: str, text: str = STORED) -> str:
    return namespace(tenant, "small", {"messages": [{"role": "user", "content": text}]})


def put(cache: SemanticCache, ns: str, text: str) -> None:
    cache.store(ns, text, cache.embed(text), ANSWER, ttl_s=60)


def find(cache: SemanticCache, ns: str, text: str) -> Any:
    query = conversation_text({"messages": [{"role": "user", "content": text}]})
    return cache.lookup(ns, query, cache.embed(query))


def test_a_threshold_rises_past_the_ceiling_then_needs_fresh_evidence_and_stops_at_the_cap(
    parts: tuple[SemanticCache, CacheVerification],
) -> None:
    _, checks = parts
    ns = ns_of("ten_a")

    assert not checks.record(ns, agreed=False).raised  # 1 check: fewer than min_verified
    first = checks.record(ns, agreed=True)  # 1 of 2 disagreed: 0.5 > 0.4
    after_first = [checks.record(ns, agreed=True), checks.record(ns, agreed=True)]  # 0 of 2: under
    second = [checks.record(ns, agreed=False), checks.record(ns, agreed=False)]
    capped = [checks.record(ns, agreed=False), checks.record(ns, agreed=False)]

    assert (first.raised, first.old_threshold, first.new_threshold) == (True, 0.85, 0.9)
    assert not any(outcome.raised for outcome in after_first)
    assert (second[-1].old_threshold, second[-1].new_threshold) == (0.9, 0.92)  # the cap, not 0.95
    assert not any(outcome.raised for outcome in capped) and checks.threshold(ns) == 0.92
    [row] = checks.namespaces("ten_a")["small"]
    assert (row["verified"], row["disagreed"], row["estimated_false_hit_rate"]) == (8, 5, 0.625)
    assert (row["verified_at_threshold"], row["disagreed_at_threshold"]) == (2, 2)


def test_a_lookup_uses_its_namespaces_raised_threshold_and_no_other(
    parts: tuple[SemanticCache, CacheVerification],
) -> None:
    cache, _ = parts
    mine, theirs = ns_of("ten_a"), ns_of("ten_b")
    put(cache, mine, STORED)
    put(cache, theirs, STORED)
    hit = find(cache, mine, PARAPHRASE)
    assert hit is not None and hit.similarity < 0.99

    cache.redis.hset(cache.keys.semantic_verification(mine), "threshold", "0.99")

    assert find(cache, mine, PARAPHRASE) is None
    assert find(cache, mine, STORED) is not None  # similarity 1.0 clears any threshold
    assert find(cache, theirs, PARAPHRASE) is not None


def test_a_threshold_below_the_configured_one_never_lowers_it(
    parts: tuple[SemanticCache, CacheVerification],
) -> None:
    cache, checks = parts
    ns = ns_of("ten_a")
    put(cache, ns, STORED)
    cache.redis.hset(cache.keys.semantic_verification(ns), "threshold", "0.1")

    assert find(cache, ns, "Password reset steps?") is None  # 0.78, passes every guard
    assert checks.threshold(ns) == 0.85


def test_a_forgotten_match_is_evicted_and_never_made_again_even_when_the_question_is_cached_anew(
    parts: tuple[SemanticCache, CacheVerification],
) -> None:
    cache, _ = parts
    ns = ns_of("ten_a")
    put(cache, ns, STORED)
    hit = find(cache, ns, PARAPHRASE)
    assert hit is not None

    assert cache.forget_match(ns, PARAPHRASE, hit.entry_id, text_sha(STORED)) is True

    assert cache.redis.get(cache.keys.semantic_entry(ns, hit.entry_id)) is None
    assert find(cache, ns, PARAPHRASE) is None
    put(cache, ns, STORED)  # a later miss writes the same question again, under a new id
    assert find(cache, ns, PARAPHRASE) is None
    again = find(cache, ns, "What is the way to reset my password?")  # another query still may
    assert again is not None and again.entry_id != hit.entry_id
    assert cache.forget_match(ns, PARAPHRASE, hit.entry_id, text_sha(STORED)) is False  # already gone


def test_the_collector_exports_checks_per_tier_without_tenants(
    parts: tuple[SemanticCache, CacheVerification],
) -> None:
    _, checks = parts
    for agreed in (True, False, False):
        checks.record(ns_of("ten_a"), agreed)
    checks.record(ns_of("ten_b"), agreed=True)
    checks.record(namespace("ten_a", "large", {"messages": []}), agreed=True)
    registry = CollectorRegistry()
    registry.register(SemanticChecksCollector(checks))

    def sample(name: str, tier: str) -> float | None:
        return registry.get_sample_value(f"switchyard_semantic_cache_{name}", {"tier": tier})

    assert (sample("verified_total", "small"), sample("disagreed_total", "small")) == (4, 2)
    assert sample("estimated_false_hit_rate", "small") == 0.5
    assert sample("threshold_raises_total", "small") == 1  # ten_a: 2 of 3 disagreed
    assert (sample("verified_total", "large"), sample("estimated_false_hit_rate", "large")) == (1, 0.0)
    labels = {s.labels.get("tier") for m in registry.collect() for s in m.samples}
    assert labels == {"small", "large"}
