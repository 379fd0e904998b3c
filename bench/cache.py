"""The result cache, measured in one run: exact-hit latency, semantic lookup latency, quality.

1. **Exact hit against a round trip.** The real processes (emulator with 0 ms latency, the
   API under uvicorn, one worker) from ``bench/switchyard_side.py``. A full round trip is
   ``POST /v1/jobs`` with ``cache: "off"`` plus long-polling it to ``succeeded``. An exact hit
   is a ``POST`` of a request whose answer is cached: the API answers 200 with the finished
   job. The two are interleaved, one of each per step, so both see the same machine.
2. **Semantic lookup** with 1k, 10k and 100k entries in one namespace (real Redis, this
   process). Filler entries carry random unit vectors (embedding 100k texts would take
   minutes); the queries are real questions embedded with MiniLM, and each namespace also
   holds the real embedded paraphrase each query should find. A lookup is what a worker does
   per job: embed the query, sync the index (nothing new after the first), the
   HNSW search, fetch the top candidates' answers and run the guards. The query's embedding
   (MiniLM, the same for any namespace size) is timed apart and also shown added in. The
   worker's index of the whole namespace, which the first lookup starts (in the background
   for a large namespace), is timed apart.
   Two of the queries are rewordings with other words for the key nouns, whose similarity
   falls under the second stage's ``check_below``: their lookups run the second stage
   (``workers/cache/pair_check.py``), timed apart as "2nd stage p50".
3. **Quality** on the test half of the evaluation set (``bench/data/semantic_eval/test.jsonl``,
   never used for tuning): precision and recall of the full matcher (threshold, guards,
   second stage) at the configured threshold, and of plain cosine at 0.8 and 0.9.

Ends with ``exact_hit_ratio=... semantic_p50_ms_100k=... ... threshold=... pairs=...
precision=... recall=...`` (the last two on the test half).
Run: ``.venv/bin/python bench/cache.py`` (``make bench-cache``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import bench_paths
import numpy as np
import semantic_quality
import switchyard_side
from redis import Redis
from rich.console import Console
from rich.progress import track
from rich.table import Table

from infra.launch import ProcessGroup
from schemas.settings import load_settings
from workers.cache.matching import SemanticMatcher
from workers.cache.pair_check import PairCheck
from workers.cache.semantic import DIMENSION, SemanticCache
from workers.keys import RedisKeys
from workers.providers.embedder import Embedder

console = Console()
QUERIES = [
    ("How do I reset my password?", "What's the way to reset my password?"),
    ("What time does the store open on Saturdays?", "When does the store open on Saturday?"),
    ("Summarise this article in three sentences.", "Give me a three-sentence summary of this article."),
    ("How can I change my billing address?", "How do I update the billing address on my account?"),
    (
        "What is the refund policy for damaged items?",
        "What's your refund policy for items that arrive damaged?",
    ),
    ("How do I cancel my subscription?", "What's the way to terminate my membership?"),
    ("Where can I download my invoices?", "Where do I get copies of my bills?"),
]
TARGETS = {"exact_hit_ratio": 0.3, "semantic_p50_ms_100k": 25.0, "precision": 0.99, "recall": 0.8}
TEST_HALF = semantic_quality.EVAL_DIR / "test.jsonl"


class TimedCheck(PairCheck):
    """The second stage, timing each run."""

    def __init__(self, embedder: Embedder) -> None:
        super().__init__(embedder)
        self.runs_ms: list[float] = []

    def probability(self, query: str, cached: str, similarity: float) -> float:
        started = time.perf_counter()
        try:
            return super().probability(query, cached, similarity)
        finally:
            self.runs_ms.append((time.perf_counter() - started) * 1000)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/cache.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--round-trips", type=int, default=200, help="exact hits and full round trips, each")
    parser.add_argument("--sizes", default="1000,10000,100000", help="semantic namespace sizes")
    parser.add_argument("--lookups", type=int, default=200, help="semantic lookups per size")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13", help="flushed at start and end")
    return parser.parse_args(argv)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def exact_hit_ratio(redis_url: str, count: int) -> dict[str, float]:
    """Interleaved full round trips and exact hits through the real API."""
    var_dir = Path(tempfile.mkdtemp(prefix="switchyard-bench-cache-"))
    procs = ProcessGroup(var_dir, bench_paths.process_env())
    try:
        side = switchyard_side.SwitchyardSide(procs, var_dir, redis_url, "")
        side.warm_up(10)
        with side.client() as client:
            cached = {
                "tier": switchyard_side.TIER,
                "cache": "exact",
                "request": {"messages": [{"role": "user", "content": f"cached question {uuid.uuid4().hex}"}]},
            }
            first = client.post("/v1/jobs", json=cached).json()
            switchyard_side.wait_final(client, first["id"])
            trips, hits = [], []
            for n in track(range(count), description="exact hit vs round trip", console=console):
                started = time.perf_counter()
                job = switchyard_side.submit(client, n)
                switchyard_side.wait_final(client, job["id"])
                trips.append(time.perf_counter() - started)
                started = time.perf_counter()
                hit = client.post("/v1/jobs", json=cached)
                hits.append(time.perf_counter() - started)
                if hit.status_code != 200 or hit.json()["cache"]["hit"] != "exact":
                    raise RuntimeError(f"expected an exact hit, got {hit.status_code}: {hit.text[:200]}")
        return {
            "hit_p50_ms": percentile(hits, 50) * 1000,
            "hit_p99_ms": percentile(hits, 99) * 1000,
            "trip_p50_ms": percentile(trips, 50) * 1000,
            "trip_p99_ms": percentile(trips, 99) * 1000,
        }
    finally:
        procs.stop_all()
        shutil.rmtree(var_dir, ignore_errors=True)


def semantic_latency(
    redis: Redis, embedder: Embedder, sizes: list[int], lookups: int, threshold: float
) -> list[dict[str, Any]]:
    """Lookup latency per namespace size, and whether each query found its paraphrase."""
    rng = np.random.default_rng(7)
    rows = []
    for size in sizes:
        keys = RedisKeys(f"sybenchsem{uuid.uuid4().hex[:6]}")
        writer = SemanticCache(redis, keys, embedder, SemanticMatcher(threshold, PairCheck(embedder)))
        ns = f"ten_bench:bench:{size}"
        fill(redis, keys, ns, size - len(QUERIES), rng)
        for stored, _ in QUERIES:
            writer.store(ns, stored, writer.embed(stored), {"source_job": "job_x", "result": {}}, 3600)
        check = TimedCheck(embedder)
        reader = SemanticCache(redis, keys, embedder, SemanticMatcher(threshold, check))
        rows.append({"size": size, **timed_lookups(reader, ns, size, lookups)})
        runs = check.runs_ms[1:]  # the first loads nothing new, but warms the path
        rows[-1] |= {"check_p50_ms": percentile(runs, 50) if runs else float("nan"), "checks": len(runs)}
        for key in redis.scan_iter(f"{keys.prefix}:*", count=10_000):
            redis.unlink(key)
    return rows


def timed_lookups(reader: SemanticCache, ns: str, size: int, lookups: int) -> dict[str, float]:
    """The first lookup (it builds the index), then ``lookups`` more, with and without embedding."""
    started = time.perf_counter()
    reader.lookup(ns, QUERIES[0][1], reader.embed(QUERIES[0][1]))
    reader.wait_for_builds()  # a large namespace is indexed in the background
    first_ms = (time.perf_counter() - started) * 1000
    times, embeds, found = [], [], 0
    for i in track(range(lookups), description=f"semantic lookups, {size:,} entries", console=console):
        _, asked = QUERIES[i % len(QUERIES)]
        started = time.perf_counter()
        vector = reader.embed(asked)
        embedded = time.perf_counter()
        hit = reader.lookup(ns, asked, vector)
        times.append((time.perf_counter() - embedded) * 1000)
        embeds.append((embedded - started) * 1000)
        found += hit is not None
    totals = [e + t for e, t in zip(embeds, times, strict=True)]
    return {
        "p50_ms": percentile(times, 50),
        "p99_ms": percentile(times, 99),
        "embed_p50_ms": percentile(embeds, 50),
        "total_p50_ms": percentile(totals, 50),
        "total_p99_ms": percentile(totals, 99),
        "first_ms": first_ms,
        "found": found / lookups,
    }


def fill(redis: Redis, keys: RedisKeys, ns: str, count: int, rng: np.random.Generator) -> None:
    """``count`` filler entries with random unit vectors, written in pipelines."""
    vectors_key, log_key = keys.semantic_vectors(ns), keys.semantic_log(ns)
    for start in range(0, count, 5000):
        n = min(5000, count - start)
        vectors = rng.standard_normal((n, DIMENSION)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        ids = [uuid.uuid4().hex for _ in range(n)]
        with redis.pipeline(transaction=False) as pipe:
            for entry_id, vector in zip(ids, vectors, strict=True):
                pipe.hset(vectors_key, entry_id, vector.tobytes())
                pipe.set(
                    keys.semantic_entry(ns, entry_id), '{"text": "filler", "source_job": "job_f"}', ex=3600
                )
            pipe.rpush(log_key, *ids)
            pipe.execute()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    redis = Redis.from_url(args.redis_url)
    redis.flushdb()
    threshold = load_settings().cache.semantic_threshold
    try:
        exact = exact_hit_ratio(args.redis_url, args.round_trips)
        embedder = Embedder()
        semantic = semantic_latency(
            redis, embedder, [int(s) for s in args.sizes.split(",")], args.lookups, threshold
        )
        pairs = semantic_quality.load_pairs(TEST_HALF)
        check = PairCheck(embedder, remembered=2 * len(pairs))
        guarded = semantic_quality.evaluate(pairs, embedder, threshold, guarded=True, second_stage=check)
        baselines = {t: semantic_quality.evaluate(pairs, embedder, t, guarded=False) for t in (0.8, 0.9)}
    finally:
        redis.flushdb()
    report(exact, semantic, guarded, baselines, threshold)
    return 0


def report(
    exact: dict[str, float],
    semantic: list[dict[str, Any]],
    guarded: dict[str, Any],
    baselines: dict[float, dict[str, Any]],
    threshold: float,
) -> None:
    """Print the three tables, the targets met or missed, and the closing ``name=value`` line."""
    console.print(exact_table(exact))
    console.print(semantic_table(semantic))
    console.print(quality_table(guarded, baselines, threshold))
    p50_100k = next((r["p50_ms"] for r in semantic if r["size"] == 100_000), float("nan"))
    with_embed = next((r["total_p50_ms"] for r in semantic if r["size"] == 100_000), float("nan"))
    figures = {
        "exact_hit_ratio": exact["hit_p50_ms"] / exact["trip_p50_ms"],
        "semantic_p50_ms_100k": p50_100k,
        "precision": guarded["precision"],
        "recall": guarded["recall"],
    }
    for name, target in TARGETS.items():
        ok = figures[name] >= target if name in ("precision", "recall") else figures[name] <= target
        console.print(f"  {'met' if ok else 'MISSED'}: {name} {figures[name]:.4f} (target {target})")
    print(
        f"exact_hit_ratio={figures['exact_hit_ratio']:.3f} semantic_p50_ms_100k={p50_100k:.2f} "
        f"baseline_precision_at_0.8={baselines[0.8]['precision']:.4f} "
        f"baseline_recall_at_0.8={baselines[0.8]['recall']:.4f} baseline_precision_at_0.9="
        f"{baselines[0.9]['precision']:.4f} semantic_with_embed_p50_ms_100k={with_embed:.2f} "
        f"threshold={threshold} pairs={guarded['tp'] + guarded['fp'] + guarded['fn'] + guarded['tn']} "
        f"precision={guarded['precision']:.4f} recall={guarded['recall']:.4f}"
    )


def exact_table(exact: dict[str, float]) -> Table:
    """Exact hits against full round trips, p50 and p99."""
    table = Table(title="Exact hit through the API against a full round trip (ms)")
    for column in ("", "p50", "p99"):
        table.add_column(column)
    table.add_row(
        "full round trip (POST + long-poll)", f"{exact['trip_p50_ms']:.2f}", f"{exact['trip_p99_ms']:.2f}"
    )
    table.add_row("exact hit (POST answered 200)", f"{exact['hit_p50_ms']:.2f}", f"{exact['hit_p99_ms']:.2f}")
    return table


SEMANTIC_COLUMNS = {
    "entries": lambda row: f"{row['size']:,}",
    "lookup p50": lambda row: f"{row['p50_ms']:.2f}",
    "lookup p99": lambda row: f"{row['p99_ms']:.2f}",
    "embed p50": lambda row: f"{row['embed_p50_ms']:.2f}",
    "with embed p50": lambda row: f"{row['total_p50_ms']:.2f}",
    "with embed p99": lambda row: f"{row['total_p99_ms']:.2f}",
    "2nd stage p50 (runs)": lambda row: f"{row['check_p50_ms']:.2f} ({row['checks']})",
    "index build (first lookup, ms)": lambda row: f"{row['first_ms']:.0f}",
    "paraphrase found": lambda row: f"{row['found']:.0%}",
}


def semantic_table(semantic: list[dict[str, Any]]) -> Table:
    """Semantic lookup latency per namespace size."""
    table = Table(
        title="Semantic lookup (ms): sync + search + fetch + guards + 2nd stage; and with the embedding"
    )
    for column in SEMANTIC_COLUMNS:
        table.add_column(column)
    for row in semantic:
        table.add_row(*(cell(row) for cell in SEMANTIC_COLUMNS.values()))
    return table


def quality_table(guarded: dict[str, Any], baselines: dict[float, dict[str, Any]], threshold: float) -> Table:
    """Precision and recall of the full matcher and of plain cosine on the test half."""
    pairs = guarded["tp"] + guarded["fp"] + guarded["fn"] + guarded["tn"]
    table = Table(title=f"Quality on the {pairs} labelled pairs of {TEST_HALF.name} (never tuned on)")
    for column in ("matching", "precision", "recall", "false hits by kind"):
        table.add_column(column)
    rows = {f"threshold {threshold}, guards, 2nd stage": guarded}
    rows |= {f"plain cosine {t}": result for t, result in baselines.items()}
    for name, result in rows.items():
        table.add_row(
            name,
            f"{result['precision']:.4f}",
            f"{result['recall']:.4f}",
            str(result["false_hits_by_kind"]),
        )
    return table


if __name__ == "__main__":
    sys.exit(main())
