"""The semantic cache: answers to questions close in meaning, shared by every worker.

Namespaces and the text a request is matched on: ``workers/cache/namespaces.py``.

**Storage (Redis, shared).** Per namespace, under ``<prefix>:sem:<tenant>:<tier>:<hash>``
(the names are built in ``workers/keys.py``): ``:log`` is a list of entry ids in the order
they were written, ``:vec`` a hash id -> the float32 embedding, and ``:entry:<id>`` the
answer with its TTL. The log and vectors live as long as the newest entry.

**Index (per worker, in memory).** Each worker keeps a graph of a namespace's vectors and
the log position it has read. A lookup reads only the log entries written since (one LLEN,
then LRANGE and HMGET of the new ones). A log shorter than the position means it was
invalidated: the index starts again. The search is an approximate nearest-neighbour query
on a faiss HNSW graph (32 links, efSearch 64): a brute-force scan of 100k vectors reads
150 MB per query, about 19 ms here, where the graph answers in well under a millisecond. A
neighbour the graph misses is a cache miss, never a wrong answer. The best
candidates above the threshold go through the guards (workers/cache/guards/) in order of
similarity, and the first one that passes is the hit. An entry whose answer has expired (or
was evicted) is skipped.

**Watching itself** (``workers/cache/verification.py``). A namespace may have its own, raised
threshold, and a query may have negatives: cached questions a caller said answer it wrongly,
never matched with it again, even when written anew. Both are read in the round trip that
reads the candidates' answers, so a lookup costs no extra round trip.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import faiss
import numpy as np
import structlog
from redis import Redis
from redis.exceptions import RedisError

from workers.cache.namespaces import tier_of_namespace
from workers.keys import RedisKeys

CANDIDATES = 5
BACKGROUND_BUILD_AT = 5000  # new entries above which a worker builds its index off the job's path
READ_CHUNK = 5000
USAGE_SAMPLE = 20  # answers measured per namespace for stats; the rest are assumed alike
HNSW_LINKS, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 80, 64
DIMENSION = 384
log = structlog.get_logger("switchyard.semantic_cache")


class TextEmbedder(Protocol):
    def embed_one(self, text: str) -> np.ndarray: ...


class Matcher(Protocol):
    threshold: float

    def accept(
        self, query: str, cached: str, similarity: float, threshold: float | None = None
    ) -> tuple[bool, str | None]: ...


@dataclass(frozen=True)
class SemanticHit:
    entry: dict[str, Any]
    similarity: float
    entry_id: str = ""


def text_sha(text: str) -> str:
    """A question's identity in the negatives: SHA-256 of its text (32 hex digits)."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass
class _Index:
    """A namespace's vectors in an HNSW graph (inner product = cosine on unit vectors)."""

    ids: list[str] = field(default_factory=list)
    graph: Any = field(default_factory=lambda: _new_graph())
    position: int = 0

    def add(self, ids: list[str], vectors: np.ndarray) -> None:
        self.graph.add(np.ascontiguousarray(vectors, dtype=np.float32))
        self.ids.extend(ids)

    def search(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        scores, rows = self.graph.search(np.asarray(vector, dtype=np.float32).reshape(1, -1), k)
        return [
            (self.ids[row], float(score)) for row, score in zip(rows[0], scores[0], strict=True) if row >= 0
        ]


def _new_graph() -> Any:
    graph = faiss.IndexHNSWFlat(DIMENSION, HNSW_LINKS, faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    graph.hnsw.efSearch = HNSW_EF_SEARCH
    return graph


class SemanticCache:
    """Lookups and stores against Redis, through this process's in-memory indexes."""

    def __init__(
        self,
        redis: Redis,
        keys: RedisKeys,
        embedder: TextEmbedder,
        matcher: Matcher,
        background_build_at: int = BACKGROUND_BUILD_AT,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.embedder = embedder
        self.matcher = matcher
        self.background_build_at = background_build_at
        self._indexes: dict[str, _Index] = {}
        self._builds: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def embed(self, text: str) -> np.ndarray:
        return np.asarray(self.embedder.embed_one(text), dtype=np.float32)

    def lookup(
        self, ns: str, text: str, vector: np.ndarray, fits: Callable[[dict[str, Any]], bool] = lambda _: True
    ) -> SemanticHit | None:
        """The closest entry that passes the threshold and the guards, and ``fits``, if any.

        ``fits`` is asked of each candidate's entry before the guards: the request's own
        checks (a length limit: ``namespaces.serves``).
        """
        index = self._sync(ns)
        if not index.ids:
            return None
        candidates = index.search(vector, CANDIDATES)
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.mget([self.keys.semantic_entry(ns, entry_id) for entry_id, _ in candidates])
            pipe.hget(self.keys.semantic_verification(ns), "threshold")
            pipe.smembers(self.keys.semantic_negatives(ns, text_sha(text)))
            payloads, raised, negatives = pipe.execute()
        threshold = max(float(raised), self.matcher.threshold) if raised else None
        for (entry_id, similarity), raw in zip(candidates, payloads, strict=True):
            if raw is None:  # the answer expired or was evicted
                continue
            entry = json.loads(raw)
            if not fits(entry) or (negatives and text_sha(entry["text"]).encode() in negatives):
                continue
            accepted, _ = self.matcher.accept(text, entry["text"], similarity, threshold=threshold)
            if accepted:
                return SemanticHit(entry=entry, similarity=round(similarity, 4), entry_id=entry_id)
        return None

    def forget_match(self, ns: str, query: str, entry_id: str, question_sha: str) -> bool:
        """Evict the entry that answered ``query`` wrongly, and never match ``query`` with its
        question again; whether the entry was still there."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.delete(self.keys.semantic_entry(ns, entry_id))
            pipe.sadd(self.keys.semantic_negatives(ns, text_sha(query)), question_sha)
            evicted, _ = pipe.execute()
        return bool(evicted)

    def store(self, ns: str, text: str, vector: np.ndarray, entry: Mapping[str, Any], ttl_s: int) -> None:
        """Add an answer to the namespace for every worker."""
        entry_id = uuid.uuid4().hex
        vectors, log = self.keys.semantic_vectors(ns), self.keys.semantic_log(ns)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.keys.semantic_entry(ns, entry_id), json.dumps({**entry, "text": text}), ex=ttl_s)
            pipe.hset(vectors, entry_id, np.asarray(vector, dtype=np.float32).tobytes())
            pipe.rpush(log, entry_id)
            for name in (vectors, log):
                pipe.expire(name, ttl_s, gt=True)
                pipe.expire(name, ttl_s, nx=True)
            pipe.execute()

    def invalidate(self, tenant_id: str, tier: str | None = None) -> int:
        """Drop the tenant's namespaces (or one tier's); the number of entries dropped."""
        deleted = 0
        names = list(self.redis.scan_iter(self.keys.semantic_pattern(tenant_id, tier), count=1000))
        for name in names:
            if self.keys.is_semantic_log(name):
                deleted += int(self.redis.llen(name))
        if names:
            self.redis.unlink(*names)
        return deleted

    def usage(self, tenant_id: str) -> dict[str, dict[str, int]]:
        """Entries and bytes (vectors and answers) per tier of the tenant; a SCAN, for stats."""
        found: dict[str, dict[str, int]] = {}
        for name in self.redis.scan_iter(self.keys.semantic_log_pattern(tenant_id), count=1000):
            ns = self.keys.namespace_of_semantic_log(name)
            row = found.setdefault(tier_of_namespace(ns), {"entries": 0, "bytes": 0})
            entries = int(self.redis.llen(name))
            row["entries"] += entries
            row["bytes"] += int(self.redis.memory_usage(self.keys.semantic_vectors(ns)) or 0)
            row["bytes"] += entries * self._answer_bytes(ns)
        return found

    def _answer_bytes(self, ns: str) -> int:
        """Mean memory of a namespace's answers, from a sample of its newest ones."""
        sample: list[bytes] = self.redis.lrange(self.keys.semantic_log(ns), -USAGE_SAMPLE, -1)  # type: ignore[assignment]
        sizes = [
            self.redis.memory_usage(self.keys.semantic_entry(ns, entry_id.decode())) for entry_id in sample
        ]
        known = [int(size) for size in sizes if size]
        return sum(known) // len(known) if known else 0

    def wait_for_builds(self, timeout: float | None = None) -> None:
        """Wait until every index being built in the background is in place."""
        with self._lock:
            builds = list(self._builds.values())
        for build in builds:
            build.join(timeout)

    def _sync(self, ns: str) -> _Index:
        """The namespace's index, with what was written since the last lookup.

        A large backlog (a worker's first lookup in a big namespace) is built in a background
        thread; until it is in place, lookups search what the index already holds, so they
        miss rather than hold the job for the build.
        """
        with self._lock:
            index = self._indexes.setdefault(ns, _Index())
            building = ns in self._builds
        length = int(self.redis.llen(self.keys.semantic_log(ns)))
        if length < index.position:  # invalidated or expired: start again
            index = _Index()
        backlog = length - index.position
        if backlog > self.background_build_at:
            if not building:
                self._build_in_background(ns, length)
        elif backlog > 0 and not building:
            self._read_into(index, ns, length)
        with self._lock:
            self._indexes[ns] = index
        return index

    def _read_into(self, index: _Index, ns: str, length: int) -> None:
        log, vectors = self.keys.semantic_log(ns), self.keys.semantic_vectors(ns)
        for start in range(index.position, length, READ_CHUNK):
            end = min(length, start + READ_CHUNK)
            logged: list[bytes] = self.redis.lrange(log, start, end - 1)  # type: ignore[assignment]
            new_ids = [i.decode() for i in logged]
            raw: list[bytes | None] = self.redis.hmget(vectors, new_ids)  # type: ignore[assignment]
            fresh = [(i, np.frombuffer(r, dtype=np.float32)) for i, r in zip(new_ids, raw, strict=True) if r]
            if fresh:
                index.add([i for i, _ in fresh], np.stack([v for _, v in fresh]))
            index.position = end

    def _build_in_background(self, ns: str, length: int) -> None:
        def build() -> None:
            fresh = _Index()
            try:
                self._read_into(fresh, ns, length)
                with self._lock:
                    self._indexes[ns] = fresh
            except (RedisError, RuntimeError, ValueError) as exc:  # the next lookup tries again
                log.warning("semantic_index_build_failed", namespace=ns, error=str(exc))
            finally:
                with self._lock:
                    self._builds.pop(ns, None)

        thread = threading.Thread(target=build, name=f"semantic-index-{ns}", daemon=True)
        with self._lock:
            self._builds[ns] = thread
        thread.start()
