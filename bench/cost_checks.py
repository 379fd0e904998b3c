"""The two safety figures of ``bench/cost.py``: wrong cache answers and budget overspend.

**wrong_cache_answers.** The pairs labelled "miss" (different meaning) in the held-out test
half ``bench/data/semantic_eval/test.jsonl``, never used for tuning. For each pair the first
text's answer is stored in a namespace of its own, and the second text is looked up through
the semantic cache the workers use (``SemanticCache`` with ``SemanticMatcher`` at the
configured threshold and the ``PairCheck`` second stage, in real Redis). A hit would serve
the first question's answer to the second: ``wrong_cache_answers`` = hits / pairs. The "hit"
pairs of the same half are looked up the same way, for the recall beside it.

**budget_overspend_calls.** The issue's concurrent-budget scenario, on the running stack:
a new tenant whose daily budget (``on_exhausted: "fail"``) is worth 10 calls of the
``budget`` tier, 50 jobs submitted at once and run by the stack's worker processes (4 by
default), and the calls the emulator received for that tier's model counted. Calls beyond
10 are the overspend.
"""

from __future__ import annotations

import math
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bench_paths
from cost_sides import wait_final
from cost_stack import CostStack
from redis import Redis
from rich.progress import Progress
from semantic_quality import Pair, load_pairs
from sqlmodel import Session

from api.keys import create_platform_key
from infra.emulator.content import prompt_tokens
from schemas.openai import CompletionUsage
from workers.cache.matching import SemanticMatcher
from workers.cache.namespaces import namespace
from workers.cache.pair_check import PairCheck
from workers.cache.semantic import SemanticCache
from workers.db import make_engine
from workers.keys import RedisKeys
from workers.middleware.usage import call_cost_usd
from workers.providers.embedder import Embedder

TEST_HALF = bench_paths.BENCH_DIR / "data" / "semantic_eval" / "test.jsonl"
BUDGET_JOBS = 50
BUDGET_WORTH_CALLS = 10
BUDGET_MAX_TOKENS = 8  # every emulated answer is longer: each call costs exactly the same


def loading_embedder() -> tuple[Embedder, threading.Thread]:
    """MiniLM, loading in the background: its imports take seconds the replays can overlap."""
    embedder = Embedder()
    thread = threading.Thread(target=lambda: embedder.model, name="load-minilm", daemon=True)
    thread.start()
    return embedder, thread


def cache_lookups(
    pairs: list[Pair], redis_url: str, threshold: float, progress: Progress, embedder: Embedder
) -> dict[str, tuple[int, int]]:
    """(hits, pairs) for the "miss" and the "hit" pairs, each pair alone in its namespace."""
    keys = RedisKeys(f"costbenchsem{uuid.uuid4().hex[:6]}")
    redis = Redis.from_url(redis_url)
    cache = SemanticCache(redis, keys, embedder, SemanticMatcher(threshold, PairCheck(embedder)))
    counts = {"miss": [0, 0], "hit": [0, 0]}
    task = progress.add_task("semantic cache on the test half's pairs", total=len(pairs))
    texts = list(dict.fromkeys([pair.a for pair in pairs] + [pair.b for pair in pairs]))
    vectors = dict(zip(texts, embedder.embed(texts), strict=True))  # batched, as workers batch theirs
    try:
        for number, pair in enumerate(pairs):
            request = {"messages": [{"role": "user", "content": pair.a}], "max_tokens": 300}
            ns = namespace(f"pair{number}", "large", request)
            answer = {"choices": [{"finish_reason": "stop"}], "usage": {"completion_tokens": 20}}
            entry = {"source_job": f"job_{number}", "result": answer}
            cache.store(ns, pair.a, vectors[pair.a], entry, 600)
            found = cache.lookup(ns, pair.b, vectors[pair.b])
            counts[pair.label][0] += found is not None
            counts[pair.label][1] += 1
            progress.advance(task)
    finally:
        for name in redis.scan_iter(f"{keys.prefix}:*", count=10_000):
            redis.unlink(name)
    return {label: (hits, total) for label, (hits, total) in counts.items()}


def test_half_pairs(limit: int | None = None, path: Path = TEST_HALF) -> list[Pair]:
    """The test half's pairs; with ``limit``, that many of each label (the quick mode)."""
    pairs = load_pairs(path)
    if limit is None:
        return pairs
    return [p for p in pairs if p.label == "miss"][:limit] + [p for p in pairs if p.label == "hit"][:limit]


@dataclass
class BudgetOutcome:
    """What the concurrent-budget scenario saw."""

    calls: int  # provider calls the emulator answered for the budget tier's model
    limit_usd: float
    spent_usd: float
    outcomes: dict[str, int]  # "202 succeeded", "202 failed budget_exceeded", "402", ...
    missing: str | None = None  # why the scenario could not run (the budget route is absent)

    @property
    def overspend_calls(self) -> int:
        return max(0, self.calls - BUDGET_WORTH_CALLS)


def budget_call_cost(stack: CostStack, content: str) -> float:
    """The exact cost of one budget-tier call: the emulator's token counts, the config's price."""
    model = stack.settings.models["budget-model"]
    prompt = prompt_tokens([{"role": "user", "content": content}])
    usage = CompletionUsage(
        prompt_tokens=prompt, completion_tokens=BUDGET_MAX_TOKENS, total_tokens=prompt + BUDGET_MAX_TOKENS
    )
    return call_cost_usd(model, usage)


def platform_key(stack: CostStack) -> str:
    engine = make_engine(stack.settings)
    try:
        with Session(engine) as session:
            key = create_platform_key(session)
            session.commit()
            return key
    finally:
        engine.dispose()


def budget_overspend(stack: CostStack) -> BudgetOutcome:
    """50 concurrent jobs against a tenant budget worth 10 calls: the calls that reached the provider."""
    tenant_id, key = stack.new_tenant("budget-bench")
    contents = [f"Budget scenario question number {n:03d}." for n in range(BUDGET_JOBS)]
    per_call = budget_call_cost(stack, contents[0])  # every content has the same token count
    limit = math.ceil(BUDGET_WORTH_CALLS * per_call * 1e8) / 1e8
    body = {"period": "day", "limit_usd": limit, "on_exhausted": "fail"}
    with stack.client(platform_key(stack)) as admin:
        answer = admin.post(f"/v1/admin/tenants/{tenant_id}/budgets", json=body)
    if answer.status_code >= 300:
        return BudgetOutcome(0, limit, 0.0, {}, f"budget route answered {answer.status_code}")
    before = stack.emulator_calls("budget-model")
    with stack.client(key) as client, ThreadPoolExecutor(BUDGET_JOBS) as pool:

        def run(content: str) -> tuple[str, float]:
            request = {"messages": [{"role": "user", "content": content}], "max_tokens": BUDGET_MAX_TOKENS}
            response = client.post("/v1/jobs", json={"tier": "budget", "cache": "off", "request": request})
            if response.status_code != 202:
                return f"{response.status_code} {error_code(response.json())}", 0.0
            job = wait_final(client, response.json()["id"], timeout=120)
            return f"202 {job['status']} {error_code(job)}".strip(), float(job.get("cost_usd") or 0)

        results = list(pool.map(run, contents))
    outcomes: dict[str, int] = {}
    for outcome, _ in results:
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    calls = stack.emulator_calls("budget-model") - before
    return BudgetOutcome(calls, limit, sum(cost for _, cost in results), outcomes)


def error_code(body: dict[str, Any]) -> str:
    """The error code of a job or an error answer, or ""."""
    error = body.get("error") or {}
    return str(error.get("code") or "")
