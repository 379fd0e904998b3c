"""The semantic cache with real MiniLM embeddings and real Redis."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from redis import Redis

from workers.cache.matching import SemanticMatcher
from workers.cache.namespaces import conversation_text, namespace
from workers.cache.semantic import SemanticCache
from workers.keys import RedisKeys
from workers.providers.embedder import Embedder

STORED = "How do I reset my password?"
ANSWER = {"source_job": "job_src", "result": {"choices": []}, "model": "emu-a", "provider": "emulator"}


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture
def prefix() -> str:
    return f"semtest{uuid.uuid4().hex[:8]}"


@pytest.fixture
def make_cache(redis_url: str, prefix: str, embedder: Embedder) -> Iterator[Any]:
    redis = Redis.from_url(redis_url)

    def make() -> SemanticCache:
        return SemanticCache(redis, RedisKeys(prefix), embedder, SemanticMatcher())

    yield make
    for key in redis.scan_iter(f"{prefix}:*"):
        redis.delete(key)
    redis.close()


def request(text: str, system: str = "Be brief.", **params: Any) -> dict[str, Any]:
    return {"messages": [{"role": "system", "content": system}, {"role": "user", "content": text}], **params}


def put(cache: SemanticCache, tenant: str, text: str, **params: Any) -> None:
    req = request(text, **params)
    ns, query = namespace(tenant, "small", req), conversation_text(req)
    cache.store(ns, query, cache.embed(query), ANSWER, ttl_s=60)


def find(cache: SemanticCache, tenant: str, text: str, **params: Any) -> Any:
    req = request(text, **params)
    ns, query = namespace(tenant, "small", req), conversation_text(req)
    return cache.lookup(ns, query, cache.embed(query))


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        (STORED, "What's the way to reset my password?"),
        ("Summarise this article in three sentences.", "Give me a three-sentence summary of this article."),
        ("What is the capital of France?", "what's the capital city of France"),
    ],
)
def test_a_paraphrase_hits_with_its_similarity_and_source(make_cache: Any, stored: str, asked: str) -> None:
    cache = make_cache()
    put(cache, "ten_a", stored)

    hit = find(cache, "ten_a", asked)

    assert hit is not None and hit.entry["source_job"] == "job_src"
    assert 0.8 <= hit.similarity <= 1.0 and hit.entry["text"] == stored


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        ("Is ibuprofen safe during pregnancy?", "Is ibuprofen not safe during pregnancy?"),
        ("What are the top 5 restaurants in Rome?", "What are the top 10 restaurants in Rome?"),
        ("What is the capital of France?", "What is the capital of Spain?"),
        ("What were the sales figures in 2023?", "What were the sales figures in 2024?"),
        ("Is Python faster than Java?", "Is Java faster than Python?"),
    ],
    ids=["negation", "number", "entity", "date", "direction"],
)
def test_a_changed_question_does_not_hit_even_when_close(make_cache: Any, stored: str, asked: str) -> None:
    cache = make_cache()
    put(cache, "ten_a", stored)

    assert find(cache, "ten_a", asked) is None


def test_namespaces_never_cross_tenants_system_prompts_or_parameters(make_cache: Any) -> None:
    cache = make_cache()
    put(cache, "ten_a", STORED)

    assert find(cache, "ten_b", STORED) is None
    assert find(cache, "ten_a", STORED, system="Answer in French.") is None
    assert find(cache, "ten_a", STORED, temperature=0.7) is None
    assert find(cache, "ten_a", STORED, stop=["\\n"]) is None
    assert find(cache, "ten_a", STORED) is not None


def test_another_process_finds_an_entry_by_syncing_only_what_is_new(
    make_cache: Any, redis_url: str, prefix: str
) -> None:
    reader = make_cache()
    put(reader, "ten_a", "What time does the store open?")
    assert find(reader, "ten_a", STORED) is None  # the reader's index now holds one entry

    # A separate process, like another worker, writes an entry.
    script = f"""
import json, sys
from redis import Redis
from workers.providers.embedder import Embedder
from workers.cache.matching import SemanticMatcher
from workers.cache.namespaces import conversation_text, namespace
from workers.cache.semantic import SemanticCache
from workers.keys import RedisKeys
req, answer = json.loads(sys.argv[1]), json.loads(sys.argv[2])
cache = SemanticCache(Redis.from_url({redis_url!r}), RedisKeys({prefix!r}), Embedder(), SemanticMatcher())
text = conversation_text(req)
cache.store(namespace("ten_a", "small", req), text, cache.embed(text), answer, 60)
"""
    argv = [sys.executable, "-c", script, json.dumps(request(STORED)), json.dumps(ANSWER)]
    subprocess.run(argv, check=True, timeout=120, env={"HF_HUB_OFFLINE": "1", "PATH": ""})

    hit = find(reader, "ten_a", "What's the way to reset my password?")

    assert hit is not None and hit.entry["text"] == STORED
    ns = namespace("ten_a", "small", request(STORED))
    assert reader._indexes[ns].position == 2 and len(reader._indexes[ns].ids) == 2


def test_invalidation_empties_every_workers_index(make_cache: Any) -> None:
    cache, other = make_cache(), make_cache()
    put(cache, "ten_a", STORED)
    assert find(other, "ten_a", STORED) is not None

    assert cache.invalidate("ten_a") == 1

    assert find(other, "ten_a", STORED) is None
    put(cache, "ten_a", "What time does the store open?")
    assert find(other, "ten_a", "When does the store open?") is not None


def test_usage_counts_entries_and_memory_per_tier(make_cache: Any) -> None:
    cache = make_cache()
    put(cache, "ten_a", STORED)
    put(cache, "ten_a", "What time does the store open?")
    put(cache, "ten_b", STORED)

    usage = cache.usage("ten_a")

    assert usage["small"]["entries"] == 2 and usage["small"]["bytes"] > 2 * 384 * 4
    assert cache.usage("ten_c") == {}


def test_a_large_backlog_is_indexed_in_the_background_while_lookups_miss(
    redis_url: str, prefix: str, embedder: Embedder, make_cache: Any
) -> None:
    writer = make_cache()
    for text in (STORED, "What time does the store open?", "How do I close my account?"):
        put(writer, "ten_a", text)
    reader = SemanticCache(
        Redis.from_url(redis_url), RedisKeys(prefix), embedder, SemanticMatcher(), background_build_at=2
    )

    early = find(reader, "ten_a", "What's the way to reset my password?")
    reader.wait_for_builds(timeout=30)
    later = find(reader, "ten_a", "What's the way to reset my password?")

    assert early is None  # the job did not wait for the build
    assert later is not None and later.entry["text"] == STORED


def test_semantic_key_names_are_the_ones_existing_caches_use() -> None:
    """A renamed key would orphan every cache written before it: the names are pinned here."""
    keys, ns = RedisKeys("sy"), "ten_a:small:2b50435e7cd87c77d27a6cf5592b8c82"

    assert namespace("ten_a", "small", request(STORED)) == ns
    assert keys.semantic_log(ns) == f"sy:sem:{ns}:log"
    assert keys.semantic_vectors(ns) == f"sy:sem:{ns}:vec"
    assert keys.semantic_entry(ns, "e1") == f"sy:sem:{ns}:entry:e1"
    assert keys.semantic_pattern("ten_a") == "sy:sem:ten_a:*:*"
    assert keys.semantic_pattern("ten_a", "small") == "sy:sem:ten_a:small:*"
    assert keys.semantic_log_pattern("ten_a") == "sy:sem:ten_a:*:*:log"
    assert keys.namespace_of_semantic_log(f"sy:sem:{ns}:log".encode()) == ns
    assert keys.is_semantic_log(f"sy:sem:{ns}:log".encode())
    assert not keys.is_semantic_log(f"sy:sem:{ns}:vec") and not keys.is_semantic_log(f"sy:sem:{ns}:entry:e1")


def test_a_stored_entry_writes_exactly_its_log_vectors_and_answer(
    make_cache: Any, redis_url: str, prefix: str
) -> None:
    cache = make_cache()
    put(cache, "ten_a", STORED)
    ns = namespace("ten_a", "small", request(STORED))
    redis = Redis.from_url(redis_url, decode_responses=True)

    (entry_id,) = [str(item) for item in redis.lrange(f"{prefix}:sem:{ns}:log", 0, -1)]
    names = {name: redis.type(name) for name in redis.scan_iter(f"{prefix}:*")}

    assert names == {
        f"{prefix}:sem:{ns}:log": "list",
        f"{prefix}:sem:{ns}:vec": "hash",
        f"{prefix}:sem:{ns}:entry:{entry_id}": "string",
    }
    assert redis.hkeys(f"{prefix}:sem:{ns}:vec") == [entry_id]
    assert json.loads(redis.get(f"{prefix}:sem:{ns}:entry:{entry_id}") or "{}")["text"] == STORED
    redis.close()
