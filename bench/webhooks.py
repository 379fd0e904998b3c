"""Signed webhooks, measured in one run: time from job completion to receipt, and deliveries/s.

A real webhook worker (Celery, threads pool, ``workers/webhooks/``) delivers to a real
receiver (uvicorn on loopback, verifying every signature with ``standardwebhooks``). This
process plays the job worker: it announces finished jobs through ``Outcomes.announce_job``,
the call a worker makes right after committing a job's final state, so the measured path is
the whole of it: the endpoint lookup, the delivery row, the Celery message, the claim, the
signing, the POST and the recording of the attempt. "Completion" is the moment just before
``announce_job``; "receipt" is when the receiver has the body.

1. **Paced**: ``--count`` jobs (5,000) finish at ``--rate`` per second: p50/p99 latency.
   First attempts are made as ``--first-attempt`` says: ``queue`` (the default, as configured
   by default) by the webhook workers, or ``in_process`` by sender threads of the announcing
   process.
2. **Burst**: ``--count`` jobs finish at once, first attempts through the webhook queue: how
   many deliveries per second the webhook workers sustain (latency there is mostly waiting
   in the queue).
3. **Baseline**, same run, same receiver: a bare loop of ``httpx`` POSTs of the same signed
   payloads, one at a time: its latency and rate are what sending alone costs.

Ends with ``webhook_p50_ms=... webhook_p99_ms=... deliveries_per_s=...``.
Run: ``.venv/bin/python bench/webhooks.py`` (``make bench-webhooks``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import bench_paths
import httpx
import numpy as np
from cpu_usage import cpu_snapshot
from redis import Redis
from rich.console import Console
from rich.table import Table
from sqlmodel import Session, col, select

from api.keys import create_tenant
from infra.launch import ProcessGroup, celery_argv, free_port, wait_http, webhook_worker_argv
from schemas.jobs import JobPublic
from schemas.settings import Settings, load_settings
from schemas.tables import Job, WebhookDelivery, WebhookEndpoint, utcnow
from workers.celery_app import create_celery
from workers.db import make_engine
from workers.event import Event
from workers.ids import new_id
from workers.keys import RedisKeys
from workers.migrate import upgrade
from workers.outcomes import Outcomes
from workers.webhooks.payloads import event_body
from workers.webhooks.signing import new_secret, signed_headers

console = Console()
TARGET_P50_MS = 50.0
RESULT = {
    "object": "chat.completion",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/webhooks.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=5000, help="webhooks per phase")
    parser.add_argument("--rate", type=float, default=20.0, help="jobs finishing per second, paced phase")
    parser.add_argument("--workers", type=int, default=2, help="webhook worker processes")
    parser.add_argument(
        "--first-attempt", choices=["in_process", "queue"], default="queue",
        help="first attempts from the announcing process's sender threads, or through the webhook queue",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=8, help="threads of each webhook worker")
    parser.add_argument("--announcers", type=int, default=4, help="threads announcing finished jobs")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5", help="flushed at start and end")
    parser.add_argument("--database-url", default="", help="default: SQLite in a temporary directory")
    return parser.parse_args(argv)


class Bench:
    """The started processes, the tenant with one endpoint, and the measuring helpers."""

    def __init__(self, args: argparse.Namespace, var_dir: Path) -> None:
        self.args, self.redis, self.var_dir = args, Redis.from_url(args.redis_url), var_dir
        self.secret, self.receipts = new_secret(), f"bench:webhooks:{uuid.uuid4().hex}"
        self.port = free_port()
        # The receiver is on loopback, this machine; the first attempt is made as configured.
        overrides = {"webhooks": {"allow_loopback": True, "first_attempt": args.first_attempt}}
        self.settings: Settings = load_settings(
            var_dir=var_dir, redis_url=args.redis_url, database_url=args.database_url,
            key_prefix=f"sybench{uuid.uuid4().hex[:6]}", **overrides,
        )  # fmt: skip
        upgrade(self.settings)
        self.engine = make_engine(self.settings)
        keys = RedisKeys(self.settings.key_prefix)
        celery = create_celery(self.settings)  # publishes the first attempts that go by the queue
        self.outcomes = Outcomes(self.settings, self.engine, self.redis, keys, celery)
        # The burst measures the webhook workers: its first attempts all go through the queue.
        queued = self.settings.webhooks.model_copy(update={"first_attempt": "queue"})
        queued_settings = self.settings.model_copy(update={"webhooks": queued})
        self.queued_outcomes = Outcomes(queued_settings, self.engine, self.redis, keys, celery)
        self.tenant_id = self._tenant_with_endpoint()
        env = {
            **bench_paths.process_env(),
            "SWITCHYARD_VAR_DIR": str(var_dir),
            "SWITCHYARD_REDIS_URL": args.redis_url,
            "SWITCHYARD_DATABASE_URL": args.database_url,
            "SWITCHYARD_KEY_PREFIX": self.settings.key_prefix,
            "SWITCHYARD_WEBHOOKS__ALLOW_LOOPBACK": "true",
            "BENCH_WEBHOOK_SECRET": self.secret,
            "BENCH_REDIS_URL": args.redis_url,
            "BENCH_RECEIPTS_KEY": self.receipts,
        }
        self.procs = ProcessGroup(var_dir, env)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _tenant_with_endpoint(self) -> str:
        now = utcnow()
        with Session(self.engine) as session:
            tenant = create_tenant(session, f"bench-{uuid.uuid4().hex[:8]}")
            session.flush()
            session.add(WebhookEndpoint(
                id=new_id("we"), tenant_id=tenant.id, url=f"http://127.0.0.1:{self.port}/hook",
                event_types=["job.succeeded"], secret=self.secret, created_at=now, updated_at=now,
            ))  # fmt: skip
            session.commit()
            return tenant.id

    def start(self) -> None:
        receiver = [sys.executable, "-m", "uvicorn", "--factory", "webhook_receiver_app:create_app",
                    "--host", "127.0.0.1", "--port", str(self.port),
                    "--log-level", "warning", "--no-access-log"]  # fmt: skip
        self.procs.start("receiver", receiver)
        queue = RedisKeys(self.settings.key_prefix).webhook_queue
        for index in range(self.args.workers):
            argv = webhook_worker_argv(queue, self.args.threads, name=f"webhooks{index}")
            self.procs.start(f"webhook-worker-{index}", argv)
        # Beat sweeps due retries (an attempt that failed is tried again 5 s later).
        self.procs.start(
            "beat", celery_argv("beat", "-s", str(self.var_dir / "beat-schedule"), log_level="WARNING")
        )
        wait_http(f"http://127.0.0.1:{self.port}/docs", alive=self.procs.check_alive)
        self.phase(50, rate=None, label="warm-up")  # connections, pools, first imports

    def job(self) -> Job:
        now = utcnow()
        return Job(
            id=new_id("job"), tenant_id=self.tenant_id, tier="small", status="succeeded",
            request={"messages": [{"role": "user", "content": "hello"}]}, result=RESULT,
            attempt_log=[], job_metadata={}, created_at=now, updated_at=now, finished_at=now,
        )  # fmt: skip

    def phase(self, count: int, rate: float | None, label: str, queued: bool = False) -> dict[str, float]:
        """``count`` jobs finish across the announcing threads (job workers), paced at ``rate``
        per second in all, or as fast as they can announce."""
        self.redis.delete(self.receipts)
        threads = self.args.announcers
        shares = [[self.job() for _ in range(index, count, threads)] for index in range(threads)]
        completed: dict[str, float] = {}
        outcomes = self.queued_outcomes if queued else self.outcomes
        start = time.perf_counter()

        def announce(jobs: list[Job]) -> None:
            for index, job in enumerate(jobs):
                if rate is not None:
                    time.sleep(max(0.0, start + index * threads / rate - time.perf_counter()))
                completed[job.id] = time.time()
                outcomes.announce_job(job)

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(announce, shares))
        summary = summarise(completed, self.collect(count), label)
        summary["retried"] = float(self.retried(list(completed)))
        return summary

    def retried(self, job_ids: list[str]) -> int:
        """How many of these jobs' deliveries needed more than one attempt."""
        with Session(self.engine) as session:
            rows = session.exec(select(WebhookDelivery).where(col(WebhookDelivery.attempts) > 1)).all()
        wanted = set(job_ids)
        return sum(1 for row in rows if json.loads(row.body)["data"]["id"] in wanted)

    def collect(self, count: int, timeout: float = 300.0) -> dict[str, float]:
        deadline = time.monotonic() + timeout
        while self.redis.llen(self.receipts) < count and time.monotonic() < deadline:
            self.procs.check_alive()
            time.sleep(0.05)
        raws = self.redis.lrange(self.receipts, 0, -1)
        rows = [(raw.decode() if isinstance(raw, bytes) else str(raw)).split(" ") for raw in raws]
        return {job_id: float(at) for job_id, at, _webhook_id in rows}

    def baseline(self, count: int) -> dict[str, float]:
        """The same signed payloads POSTed one by one with a bare httpx client."""
        self.redis.delete(self.receipts)
        completed: dict[str, float] = {}
        with httpx.Client(timeout=15) as client:
            for _ in range(count):
                job = self.job()
                body = _body(job, self.settings)
                completed[job.id] = time.time()
                headers = signed_headers(new_id("evt"), body, [self.secret], utcnow())
                client.post(self.url, content=body.encode(), headers=headers).raise_for_status()
        return summarise(completed, self.collect(count), "baseline")

    def close(self) -> None:
        self.procs.stop_all()
        self.engine.dispose()


def _body(job: Job, settings: Settings) -> str:
    """The body a delivery of this job's event carries."""
    event = Event(job.tenant_id, "job.succeeded", JobPublic.from_row(job).model_dump(mode="json"))
    return event_body(event, settings)


def summarise(completed: dict[str, float], received: dict[str, float], label: str) -> dict[str, float]:
    """Latency percentiles and the delivery rate of one phase."""
    missing = set(completed) - set(received)
    if missing:
        raise RuntimeError(f"{label}: {len(missing)} of {len(completed)} webhooks never arrived")
    latencies = np.asarray([(received[job] - at) * 1000 for job, at in completed.items()])
    span = max(received.values()) - min(completed.values())
    return {
        "count": float(len(completed)),
        "p50_ms": float(np.percentile(latencies, 50)),
        "p99_ms": float(np.percentile(latencies, 99)),
        "max_ms": float(latencies.max()),
        "per_s": len(completed) / span if span > 0 else float("nan"),
    }


def report(results: dict[str, dict[str, float]], cpu: dict[str, float], args: argparse.Namespace) -> None:
    table = Table(title=f"Webhooks: {args.count} per phase, completion -> receipt (ms)")
    for column in ("phase", "count", "p50 ms", "p99 ms", "max ms", "deliveries/s", "retried"):
        table.add_column(column, justify="left" if column == "phase" else "right")
    for name, row in results.items():
        figures = [
            row["count"],
            row["p50_ms"],
            row["p99_ms"],
            row["max_ms"],
            row["per_s"],
            row.get("retried", 0),
        ]
        table.add_row(
            name,
            *(f"{value:.1f}" if 0 < index < 4 else f"{value:.0f}" for index, value in enumerate(figures)),
        )
    console.print(table)
    used = ", ".join(f"{name} {ms:.2f}" for name, ms in sorted(cpu.items(), key=lambda item: -item[1]))
    console.print(
        f"CPU ms per delivery in the burst ({os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}): {used}"
    )
    paced, burst, bare = results[f"paced {args.rate:g}/s"], results["burst"], results["baseline"]
    console.print(
        f"Ratios against the bare POST loop: p50 {paced['p50_ms'] / bare['p50_ms']:.1f}x, "
        f"p99 {paced['p99_ms'] / bare['p99_ms']:.1f}x, deliveries/s {burst['per_s'] / bare['per_s']:.2f}x. "
        f"Target p50 <= {TARGET_P50_MS:g} ms: {'met' if paced['p50_ms'] <= TARGET_P50_MS else 'MISSED'}."
    )
    print(
        f"webhook_p50_ms={paced['p50_ms']:.1f} webhook_p99_ms={paced['p99_ms']:.1f} "
        f"deliveries_per_s={burst['per_s']:.0f} baseline_p50_ms={bare['p50_ms']:.1f} "
        f"baseline_per_s={bare['per_s']:.0f} p50_ratio={paced['p50_ms'] / bare['p50_ms']:.1f} "
        f"throughput_ratio={burst['per_s'] / bare['per_s']:.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    Redis.from_url(args.redis_url).flushdb()
    var_dir = Path(tempfile.mkdtemp(prefix="switchyard-bench-webhooks-"))
    bench = Bench(args, var_dir)
    try:
        bench.start()
        results: dict[str, Any] = {}
        results["baseline"] = bench.baseline(args.count)
        results[f"paced {args.rate:g}/s"] = bench.phase(args.count, args.rate, "paced")
        before = cpu_snapshot(bench.procs)
        results["burst"] = bench.phase(args.count, None, "burst", queued=True)
        cpu = {
            name: (used - before.get(name, 0.0)) * 1000 / args.count
            for name, used in cpu_snapshot(bench.procs).items()
        }
    finally:
        bench.close()
        Redis.from_url(args.redis_url).flushdb()
        shutil.rmtree(var_dir, ignore_errors=True)
    report(results, cpu, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
