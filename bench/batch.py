"""Batches, measured in one run; each measurement is its own function, the last line joins them.

**submit_10k_s**: seconds from the start of ``POST /v1/batches`` with a 10,000-line JSONL
(OpenAI Batch input format, direct form) until every job is on its Redis queue: the API
answers after the rows are committed and the messages published, and the queue length is
checked right after. ``submit_10k_api_cpu_s`` is the CPU the API process spent on it, which
on a machine shared with other work says more than the wall time. Real API under uvicorn,
real Redis, SQLite by default (``--database-url`` for PostgreSQL); no worker runs, so the
queue holds exactly the batch.
Baseline in the same run: single ``POST /v1/jobs`` over one keep-alive connection, a sample
of ``--baseline-jobs`` timed and extrapolated to 10,000 (``single_jobs_10k_s``).

**local_batch_speedup**, **local_tokens_per_s**, **embed_batch_speedup**: worker-side
batching through the local adapter's collector, batched against unbatched in the same run
(``bench/worker_batching.py``).

Run: ``.venv/bin/python bench/batch.py`` (``make bench-batch``; ``--only NAME,...`` runs some
measurements). Ends with ``submit_10k_s=... local_batch_speedup=... embed_batch_speedup=...
local_tokens_per_s=...`` and then the other figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bench_paths
import httpx
from cpu_usage import cpu_snapshot
from redis import Redis
from switchyard_side import create_database, drop_database, tenant_key
from worker_batching import add_arguments, embed_batching, local_batching

from infra.launch import ProcessGroup, api_argv, free_port, wait_http
from schemas.settings import load_settings
from workers.dispatch import priority_keys
from workers.migrate import upgrade

LINES = 10_000
TARGETS = {"submit_10k_s": 3.0}
SUBMIT_CONFIG = """\
# Written by bench/batch.py: one tier; no worker runs, so nothing is called.
[providers.emulator]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"

[models.emu-bench]
provider = "emulator"
model = "emu-bench"

[tiers.{tier}]
models = ["emu-bench"]
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/batch.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--database-url", default="", help="PostgreSQL admin URL; empty: SQLite")
    parser.add_argument("--repeats", type=int, default=3, help="10k-line submissions; the median counts")
    parser.add_argument("--baseline-jobs", type=int, default=500, help="single POST /v1/jobs timed")
    parser.add_argument("--only", default="", help="comma-separated measurement names; default: all")
    add_arguments(parser)
    return parser.parse_args(argv)


def batch_lines(tier: str, count: int) -> bytes:
    """``count`` distinct chat lines (each misses the exact cache, which every line consults)."""
    tag = uuid.uuid4().hex[:8]
    return "\n".join(
        json.dumps(
            {
                "custom_id": f"doc-{index}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": tier,
                    "messages": [{"role": "user", "content": f"Summarise document {index} {tag}."}],
                },
            }
        )
        for index in range(count)
    ).encode()


def queued(redis: Redis, tier: str) -> int:
    """Messages on the tier's batch queue, every priority level."""
    return sum(int(redis.llen(key)) for key in priority_keys(f"tier.{tier}.batch"))  # type: ignore[arg-type]


def submit_10k(args: argparse.Namespace) -> dict[str, float]:
    """10,000 lines in one batch against single job submissions, through the real API."""
    tier = f"bb{uuid.uuid4().hex[:8]}"
    var_dir = Path(tempfile.mkdtemp(prefix="switchyard-bench-batch-"))
    config = var_dir / "bench.toml"
    config.write_text(SUBMIT_CONFIG.format(tier=tier))
    database_url = create_database(args.database_url) if args.database_url else ""
    settings = load_settings(
        config_file=config, var_dir=var_dir, redis_url=args.redis_url, database_url=database_url,
        key_prefix=f"bench{uuid.uuid4().hex[:8]}",
    )  # fmt: skip
    upgrade(settings)
    redis = Redis.from_url(args.redis_url)
    processes = ProcessGroup(log_dir=var_dir, env={**bench_paths.process_env(), **_env(settings)})
    port = free_port()
    try:
        processes.start("api", api_argv(port, log_level="warning"))
        wait_http(f"http://127.0.0.1:{port}/readyz", alive=processes.check_alive)
        headers = {"Authorization": f"Bearer {tenant_key(settings)}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=120) as client:
            before = cpu_snapshot(processes)["api"]
            baseline = _single_jobs_10k_s(client, tier, args.baseline_jobs)
            baseline_cpu = (cpu_snapshot(processes)["api"] - before) / args.baseline_jobs * LINES
            _drain(redis, tier)
            runs, cpu = [], []
            for _ in range(args.repeats):
                before = cpu_snapshot(processes)["api"]
                runs.append(_one_batch(client, redis, tier))
                cpu.append(cpu_snapshot(processes)["api"] - before)
    finally:
        processes.stop_all()
        _drain(redis, tier)
        if database_url:
            drop_database(args.database_url, database_url)
    submit = statistics.median(runs)
    load = os.getloadavg()
    print(f"machine load (1/5 min) at the end: {load[0]:.1f}/{load[1]:.1f} on {os.cpu_count()} CPUs")
    submit_cpu = statistics.median(cpu)
    print(f"submit 10k lines: runs {', '.join(f'{run:.2f}' for run in runs)} s, median {submit:.2f} s")
    print(f"  API CPU per submission: {', '.join(f'{c:.2f}' for c in cpu)} s, median {submit_cpu:.2f} s")
    print(f"single POST /v1/jobs: {baseline:.1f} s and {baseline_cpu:.1f} API CPU s for 10k", end=" ")
    print(f"(extrapolated from {args.baseline_jobs})")
    print(f"batch is {baseline / submit:.1f}x faster than single submissions,", end=" ")
    print(f"with {baseline_cpu / submit_cpu:.1f}x less API CPU")
    return {
        "submit_10k_s": round(submit, 2),
        "submit_10k_api_cpu_s": round(submit_cpu, 2),
        "single_jobs_10k_s": round(baseline, 1),
        "batch_submit_speedup": round(baseline / submit, 1),
    }


def _single_jobs_10k_s(client: httpx.Client, tier: str, count: int) -> float:
    tag = uuid.uuid4().hex[:8]
    started = time.perf_counter()
    for index in range(count):
        request = {"messages": [{"role": "user", "content": f"Summarise document {index} {tag}."}]}
        response = client.post("/v1/jobs", json={"tier": tier, "priority": "batch", "request": request})
        if response.status_code != 202:
            raise RuntimeError(f"POST /v1/jobs answered {response.status_code}: {response.text[:300]}")
    return (time.perf_counter() - started) / count * LINES


def _one_batch(client: httpx.Client, redis: Redis, tier: str) -> float:
    body = batch_lines(tier, LINES)
    before = queued(redis, tier)
    started = time.perf_counter()
    response = client.post(
        "/v1/batches", content=body, params={"tier": tier}, headers={"Content-Type": "application/jsonl"}
    )
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"POST /v1/batches answered {response.status_code}: {response.text[:300]}")
    if queued(redis, tier) - before != LINES:
        raise RuntimeError(f"{queued(redis, tier) - before} of {LINES} jobs are queued after the answer")
    _drain(redis, tier)
    return elapsed


def _drain(redis: Redis, tier: str) -> None:
    redis.delete(*priority_keys(f"tier.{tier}.batch"), *priority_keys(f"tier.{tier}.live"))


def _env(settings: Any) -> dict[str, str]:
    return {
        "SWITCHYARD_CONFIG_FILE": str(settings.config_file),
        "SWITCHYARD_VAR_DIR": str(settings.var_dir),
        "SWITCHYARD_REDIS_URL": settings.redis_url,
        "SWITCHYARD_DATABASE_URL": settings.database_url,
        "SWITCHYARD_KEY_PREFIX": settings.key_prefix,
    }


# Each measurement: a function of the arguments answering its figures. Add yours here.
MEASUREMENTS: list[Callable[[argparse.Namespace], dict[str, float]]] = [
    submit_10k,
    local_batching,
    embed_batching,
]
# The figures the issue asks for come first on the last line, in this order.
HEADLINE = ["submit_10k_s", "local_batch_speedup", "embed_batch_speedup", "local_tokens_per_s"]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    figures: dict[str, float] = {}
    only = set(filter(None, args.only.split(",")))
    for measure in MEASUREMENTS:
        if not only or measure.__name__ in only:
            figures.update(measure(args))
    for name, target in TARGETS.items():
        if name in figures:
            verdict = "meets" if figures[name] <= target else "misses"
            print(f"{name}={figures[name]} {verdict} its target of {target}")
    ordered = [name for name in HEADLINE if name in figures] + [n for n in figures if n not in HEADLINE]
    print(" ".join(f"{name}={figures[name]}" for name in ordered))


if __name__ == "__main__":
    main()
