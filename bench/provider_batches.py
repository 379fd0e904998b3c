"""The provider Batch API lane against live calls, measured in one run on the same emulator.

Both sides run the same number of batch-priority chat jobs, in this process, on one SQLite
database, against one served emulator (0 ms latency, batches complete at once):

- **live**: each job runs as a worker runs it (``run_job``: claim, policy chain, one
  ``/v1/chat/completions`` call, settle);
- **lane**: each job is claimed and parked by the same ``run_job`` (its window is ``24h``),
  then beat passes (``run_pass``) send the batches and merge the answers back.

Reported: wall time of each side and jobs/s, the provider requests each made (live: one per
job; lane: uploads, creates, polls and downloads, counted at the HTTP client), and the cost
recorded (the lane's at the batch price). Ends with ``lane_jobs=... lane_time_ratio=...
lane_cost_ratio=... lane_requests_ratio=...``.
Run: ``.venv/bin/python bench/provider_batches.py`` (``make bench-provider-batches``).
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import bench_paths
import httpx
import structlog
from redis import Redis
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from api.keys import create_tenant
from infra.launch import free_port, wait_http
from schemas.settings import load_settings
from workers import store
from workers.celery_app import create_celery
from workers.db import session_scope
from workers.job_runner import run_job
from workers.migrate import upgrade
from workers.provider_batches import client as batch_client
from workers.provider_batches.lane import run_pass
from workers.runtime import Runtime
from workers.store import JOBS

console = Console()
TIER = "bench-lane"
REQUESTS: Counter[str] = Counter()  # provider HTTP requests of the lane, by path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/provider_batches.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=500, help="jobs on each side")
    parser.add_argument("--max-lines", type=int, default=250, help="lines per provider batch")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13", help="its bench keys are deleted")
    return parser.parse_args(argv)


def start_emulator(port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "infra.emulator", "--port", str(port), "--batch-delay-s", "0"]
    process = subprocess.Popen(command, cwd=bench_paths.ROOT, env=bench_paths.process_env())
    wait_http(f"http://127.0.0.1:{port}/emulator/stats")
    return process


def runtime(var_dir: Path, redis_url: str, emulator_url: str, max_lines: int) -> Runtime:
    settings = load_settings(
        var_dir=var_dir,
        redis_url=redis_url,
        database_url="",
        key_prefix=f"benchlane{uuid.uuid4().hex[:6]}",
        providers={"bench": {"kind": "openai", "base_url": f"{emulator_url}/v1", "batch_api": True}},
        models={
            "bench-model": {
                "provider": "bench",
                "model": "bench-model",
                "input_usd_per_mtok": 1.0,
                "output_usd_per_mtok": 4.0,
            }
        },
        tiers={TIER: {"models": ["bench-model"], "default_max_tokens": 32}},
        provider_batches={"max_lines": max_lines, "max_wait_s": 0.001},
        rate_limits={"tenant_max_running": 1000},
    )
    upgrade(settings)
    return Runtime(settings=settings, celery=create_celery(settings))


def add_jobs(rt: Runtime, count: int, window: str | None) -> list[str]:
    """``count`` batch-priority jobs of a new tenant, distinct prompts (no cache hits)."""
    tag = uuid.uuid4().hex[:6]
    with session_scope(rt.engine) as session:
        tenant = create_tenant(session, f"bench-{tag}")
        session.flush()
        return [
            store.insert_job(
                session,
                tenant_id=tenant.id,
                tier=TIER,
                priority="batch",
                completion_window=window,
                cache_mode="off",
                request={"messages": [{"role": "user", "content": f"Summarise document {n} ({tag})."}]},
                job_metadata={},
            ).id
            for n in range(count)
        ]


def count_lane_requests() -> None:
    """Count every provider request the lane's client makes (one per SDK call)."""
    call = batch_client.BatchClient._call

    def counted(request: Any) -> Any:
        REQUESTS["lane"] += 1
        return call(request)

    batch_client.BatchClient._call = staticmethod(counted)  # type: ignore[method-assign]


def run_live(rt: Runtime, job_ids: list[str]) -> float:
    started = time.perf_counter()
    for job_id in job_ids:
        run_job(rt, job_id)
    return time.perf_counter() - started


def run_lane(rt: Runtime, job_ids: list[str]) -> float:
    started = time.perf_counter()
    for job_id in job_ids:
        run_job(rt, job_id)  # parks the job
    while finished(rt, job_ids) < len(job_ids):
        run_pass(rt)
    return time.perf_counter() - started


def finished(rt: Runtime, job_ids: list[str]) -> int:
    query = select(func.count()).where(JOBS.c.id.in_(job_ids), JOBS.c.status.in_(("succeeded", "failed")))
    with rt.engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def totals(rt: Runtime, job_ids: list[str]) -> tuple[int, float]:
    """(succeeded jobs, cost recorded) of a side."""
    query = select(JOBS.c.status, JOBS.c.cost_usd).where(JOBS.c.id.in_(job_ids))
    with rt.engine.connect() as connection:
        rows = connection.execute(query).all()
    return sum(status == "succeeded" for status, _ in rows), sum(cost for _, cost in rows)


def forget_keys(redis_url: str, prefix: str) -> None:
    redis = Redis.from_url(redis_url)
    names = redis.keys(f"*{prefix}*")
    if names:
        redis.delete(*names)


def report(jobs: int, live: dict[str, float], lane: dict[str, float]) -> None:
    table = Table(title=f"Provider batch lane against live calls, {jobs} jobs each")
    for column in ("side", "seconds", "jobs/s", "succeeded", "provider requests", "cost USD"):
        table.add_column(column, justify="right")
    for name, side in (("live", live), ("lane", lane)):
        table.add_row(
            name,
            f"{side['seconds']:.2f}",
            f"{jobs / side['seconds']:.0f}",
            f"{side['succeeded']:.0f}",
            f"{side['requests']:.0f}",
            f"{side['cost']:.6f}",
        )
    console.print(table)
    time_ratio = lane["seconds"] / live["seconds"]
    cost_ratio = lane["cost"] / live["cost"]
    requests_ratio = lane["requests"] / live["requests"]
    console.print(
        f"lane/live: time {time_ratio:.2f}, cost {cost_ratio:.3f}, provider requests {requests_ratio:.4f}"
    )
    print(
        f"lane_jobs={jobs} lane_time_ratio={time_ratio:.3f} lane_cost_ratio={cost_ratio:.3f} "
        f"lane_requests_ratio={requests_ratio:.4f} lane_jobs_per_s={jobs / lane['seconds']:.0f} "
        f"live_jobs_per_s={jobs / live['seconds']:.0f}"
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # One provider_call line per job would drown the table; warnings still show.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    port = free_port()
    emulator = start_emulator(port)
    url = f"http://127.0.0.1:{port}"
    count_lane_requests()
    try:
        with tempfile.TemporaryDirectory() as var_dir:
            rt = runtime(Path(var_dir), args.redis_url, url, args.max_lines)
            # Warm both paths (SDK imports, connections, statement caches) before timing either.
            run_live(rt, add_jobs(rt, 10, None))
            run_lane(rt, add_jobs(rt, 10, "24h"))
            REQUESTS.clear()
            live_ids, lane_ids = add_jobs(rt, args.jobs, None), add_jobs(rt, args.jobs, "24h")
            live_calls = httpx.get(f"{url}/emulator/stats").json()["requests"]
            live = {"seconds": run_live(rt, live_ids)}
            live["requests"] = httpx.get(f"{url}/emulator/stats").json()["requests"] - live_calls
            lane = {"seconds": run_lane(rt, lane_ids), "requests": REQUESTS["lane"]}
            for side, ids in ((live, live_ids), (lane, lane_ids)):
                side["succeeded"], side["cost"] = totals(rt, ids)
            forget_keys(args.redis_url, rt.settings.key_prefix)
            rt.engine.dispose()
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)
    report(args.jobs, live, lane)


if __name__ == "__main__":
    main()
