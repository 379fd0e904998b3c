"""Switchyard's per-job overhead against bare Celery, measured in one run on the same Redis.

Baseline: a bare Celery app (Redis broker and result backend, one empty task, a prefork
worker with two processes, acks late, prefetch one). Switchyard: the real processes (provider
emulator with no latency and no limits, the API under uvicorn, one worker with two prefork
processes serving a tier whose only model is on the emulator) and a tenant key.

Each side is measured twice: sequential round trips (p50/p99 latency) and throughput with
many jobs in flight (jobs/s). The last line holds the ratios and figures as ``name=value``.

Run: ``.venv/bin/python bench/overhead.py`` (or ``make bench-overhead``); ``--help`` for options.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from redis import Redis
from rich.console import Console
from rich.table import Table
from sqlmodel import Session

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from bare_celery_app import BARE_QUEUE, BARE_TASK, REDIS_URL_ENV, make_bare_app  # noqa: E402
from cpu_usage import cpu_delta, cpu_snapshot  # noqa: E402

from api.keys import create_key, create_tenant  # noqa: E402
from infra.launch import ProcessGroup, api_argv, emulator_argv, free_port, wait_http, worker_argv  # noqa: E402
from schemas.settings import PRIORITIES, Settings, load_settings, queue_name  # noqa: E402
from workers.db import make_engine  # noqa: E402
from workers.keys import RedisKeys  # noqa: E402
from workers.migrate import upgrade  # noqa: E402

TIER = "bench"
MODEL_ALIAS = "emu-bench"
FINAL = frozenset({"succeeded", "failed", "canceled"})
TARGET_OVERHEAD_RATIO_P50 = 2.5
TARGET_THROUGHPUT_RATIO = 0.4
WARMUP_BURST = 8
THROUGHPUT_DEADLINE_S = 300.0  # a stuck run fails its remaining jobs instead of hanging
console = Console()

BENCH_CONFIG = """\
# Written by bench/overhead.py: one tier whose only model is on the provider emulator.
[providers.emulator]
kind = "openai"
base_url = "{emulator_url}/v1"
api_key = "emulator-key"
timeout_s = 10

[models.{alias}]
provider = "emulator"
model = "{alias}"
input_usd_per_mtok = 0.15
output_usd_per_mtok = 0.60

[tiers.{tier}]
models = ["{alias}"]
default_max_tokens = 16
attempts_per_model = 1
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/overhead.py", description="Switchyard's overhead against bare Celery."
    )
    parser.add_argument("--sequential", type=int, default=300, help="sequential round trips per side")
    parser.add_argument("--warmup", type=int, default=20, help="round trips before measuring")
    parser.add_argument("--inflight", type=int, default=2000, help="jobs in flight for throughput")
    parser.add_argument("--threads", type=int, default=16, help="client threads for Switchyard throughput")
    parser.add_argument(
        "--redis-url", default="redis://127.0.0.1:6379/11", help="a dedicated Redis db, flushed"
    )
    parser.add_argument(
        "--database-url",
        default="",
        help="PostgreSQL admin URL, e.g. postgresql://postgres@127.0.0.1:5432/test; a fresh "
        "database is created for the run and dropped after. Empty: SQLite in a temp var dir.",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, SQLite file)")
    return parser.parse_args(argv)


# --- processes -----------------------------------------------------------------------------


# --- statistics ----------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile, ``q`` in 0..100."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class SideResult:
    """The figures of one side (bare Celery or Switchyard)."""

    latencies_ms: list[float]
    jobs: int
    elapsed_s: float
    failures: list[str] = field(default_factory=list)
    stages_ms: dict[str, list[float]] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)  # CPU seconds over the throughput phase

    @property
    def p50(self) -> float:
        return percentile(self.latencies_ms, 50)

    @property
    def p99(self) -> float:
        return percentile(self.latencies_ms, 99)

    @property
    def jobs_s(self) -> float:
        return self.jobs / self.elapsed_s if self.elapsed_s > 0 else 0.0


# --- bare Celery ---------------------------------------------------------------------------


def run_bare(procs: ProcessGroup, redis_url: str, args: argparse.Namespace) -> SideResult:
    console.print("[bold]bare Celery[/]: starting the worker (prefork, -c 2)")
    procs.start(
        "bare-worker",
        worker_argv([BARE_QUEUE], 2, "bare", app="bare_celery_app", log_level="WARNING"),
        env={REDIS_URL_ENV: redis_url},
    )
    client = make_bare_app(redis_url)
    noop = client.tasks[BARE_TASK]
    failures: list[str] = []
    try:
        noop.apply_async().get(timeout=60)  # the worker is up once this returns
        for _ in range(args.warmup):
            noop.apply_async().get(timeout=10)
        latencies = []
        for _ in range(args.sequential):
            started = time.perf_counter()
            noop.apply_async().get(timeout=10)
            latencies.append((time.perf_counter() - started) * 1000)
        console.print(f"  sequential: {len(latencies)} round trips done")
        cpu_before = cpu_snapshot(procs)
        started = time.perf_counter()
        results = [noop.apply_async() for _ in range(args.inflight)]
        for result in results:
            try:
                result.get(timeout=120)
            except Exception as exc:  # the task boundary of the baseline: count and show it
                failures.append(f"bare {result.id}: {exc!r}")
        elapsed = time.perf_counter() - started
        cpu = cpu_delta(cpu_before, cpu_snapshot(procs))
        console.print(f"  throughput: {args.inflight} tasks in {elapsed:.2f}s")
    finally:
        client.close()
        procs.stop("bare-worker")
    return SideResult(latencies, args.inflight, elapsed, failures, cpu_s=cpu)


# --- Switchyard ----------------------------------------------------------------------------


@dataclass
class SwitchyardStack:
    api_url: str
    key: str


def create_database(admin_url: str) -> str:
    """A fresh PostgreSQL database next to ``admin_url``; returns its URL."""
    name = f"switchyard_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return f"{admin_url.rsplit('/', 1)[0]}/{name}"


def drop_database(admin_url: str, url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def tenant_key(settings: Settings) -> str:
    engine = make_engine(settings)
    try:
        with Session(engine) as session:
            tenant = create_tenant(session, f"bench-{settings.key_prefix}")
            session.flush()
            key = create_key(session, tenant.id, {"submit", "read"})
            session.commit()
    finally:
        engine.dispose()
    return key


def start_switchyard(
    procs: ProcessGroup, var_dir: Path, redis_url: str, database_url: str
) -> SwitchyardStack:
    api_port, emulator_port = free_port(), free_port()
    emulator_url = f"http://127.0.0.1:{emulator_port}"
    config_file = var_dir / "switchyard-bench.toml"
    config_file.write_text(BENCH_CONFIG.format(emulator_url=emulator_url, alias=MODEL_ALIAS, tier=TIER))
    key_prefix = f"sybench{uuid.uuid4().hex[:8]}"
    settings = load_settings(
        config_file=config_file,
        var_dir=var_dir,
        redis_url=redis_url,
        database_url=database_url,
        key_prefix=key_prefix,
    )
    upgrade(settings)
    key = tenant_key(settings)
    procs.env.update(
        {
            "SWITCHYARD_CONFIG_FILE": str(config_file),
            "SWITCHYARD_VAR_DIR": str(var_dir),
            "SWITCHYARD_REDIS_URL": redis_url,
            "SWITCHYARD_DATABASE_URL": database_url,
            "SWITCHYARD_KEY_PREFIX": key_prefix,
            "SWITCHYARD_PROVIDERS__EMULATOR__BASE_URL": f"{emulator_url}/v1",
        }
    )
    procs.start("emulator", emulator_argv(emulator_port))
    api_url = f"http://127.0.0.1:{api_port}"
    procs.start("api", api_argv(api_port, log_level="warning"))
    queues = [queue_name(TIER, priority) for priority in PRIORITIES]
    queues.append(RedisKeys(key_prefix).maintenance_queue)
    procs.start("switchyard-worker", worker_argv(queues, 2, "switchyard", log_level="WARNING"))
    wait_http(f"{emulator_url}/emulator/stats", alive=procs.check_alive)
    wait_http(f"{api_url}/readyz", alive=procs.check_alive)
    procs.check_alive()
    return SwitchyardStack(api_url, key)


def job_body(n: int) -> dict[str, Any]:
    # Distinct content and cache off: every job goes through the worker and the provider.
    content = f"benchmark job {n} {uuid.uuid4().hex[:8]}"
    return {"tier": TIER, "cache": "off", "request": {"messages": [{"role": "user", "content": content}]}}


def submit(client: httpx.Client, n: int) -> dict[str, Any]:
    response = client.post("/v1/jobs", json=job_body(n))
    if response.status_code != 202:
        raise RuntimeError(f"submit answered {response.status_code}: {response.text[:300]}")
    return dict(response.json())


def wait_final(client: httpx.Client, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        response = client.get(f"/v1/jobs/{job_id}", params={"wait": round(min(10.0, max(remaining, 0)), 3)})
        if response.status_code != 200:
            raise RuntimeError(f"GET {job_id} answered {response.status_code}: {response.text[:300]}")
        job = dict(response.json())
        if job["status"] in FINAL or remaining <= 0:
            return job


def check_job(job: dict[str, Any]) -> str | None:
    """A failure message for a job that did not succeed, else None."""
    if job["status"] == "succeeded":
        return None
    error = job.get("error") or {}
    return f"job {job['id']}: {job['status']} {error.get('code')}: {error.get('message')}"


def make_client(stack: SwitchyardStack) -> httpx.Client:
    return httpx.Client(
        base_url=stack.api_url,
        headers={"Authorization": f"Bearer {stack.key}"},
        timeout=httpx.Timeout(30.0),
        limits=httpx.Limits(max_keepalive_connections=4, max_connections=4),
    )


def epoch_s(stamp: str | None) -> float:
    if not stamp:
        return float("nan")
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def run_switchyard_sequential(stack: SwitchyardStack, args: argparse.Namespace) -> SideResult:
    latencies: list[float] = []
    failures: list[str] = []
    stages: dict[str, list[float]] = {
        "POST /v1/jobs answered": [],
        "created -> started (queue, claim)": [],
        "started -> finished (chain, call, settle)": [],
        "finished -> client has it": [],
    }
    with make_client(stack) as client:
        first = submit(client, -1)
        failure = check_job(wait_final(client, first["id"], timeout=90))  # the worker is up after this
        if failure:
            failures.append(f"warm-up {failure}")
        # A burst first, so both pool processes have run a job (the first job of a pool process
        # pays its imports and connections), then sequential warm-up round trips.
        burst = [submit(client, -2 - n)["id"] for n in range(WARMUP_BURST)]
        for n in range(args.warmup):
            wait_final(client, submit(client, n)["id"])
        for job_id in burst:
            failure = check_job(wait_final(client, job_id))
            if failure:
                failures.append(f"warm-up {failure}")
        for n in range(args.sequential):
            started = time.perf_counter()
            job_id = submit(client, n)["id"]
            posted = time.perf_counter()
            job = wait_final(client, job_id)
            done = time.perf_counter()
            done_wall = time.time()
            latencies.append((done - started) * 1000)
            failure = check_job(job)
            if failure:
                failures.append(failure)
                continue
            created, began, finished = (
                epoch_s(job["created_at"]),
                epoch_s(job["started_at"]),
                epoch_s(job["finished_at"]),
            )
            stages["POST /v1/jobs answered"].append((posted - started) * 1000)
            stages["created -> started (queue, claim)"].append((began - created) * 1000)
            stages["started -> finished (chain, call, settle)"].append((finished - began) * 1000)
            stages["finished -> client has it"].append((done_wall - finished) * 1000)
    return SideResult(latencies, 0, 0.0, failures, stages)


def run_switchyard_throughput(stack: SwitchyardStack, args: argparse.Namespace) -> tuple[float, list[str]]:
    """Submit ``--inflight`` jobs from ``--threads`` clients, then wait on each; (seconds, failures)."""
    failures: list[str] = []
    first_submit: list[float] = []
    last_final: list[float] = []
    lock = threading.Lock()
    start_gate = threading.Barrier(args.threads)
    deadline = time.monotonic() + THROUGHPUT_DEADLINE_S

    def client_thread(index: int) -> None:
        numbers = range(index, args.inflight, args.threads)
        local_failures: list[str] = []
        ids: list[str] = []
        with make_client(stack) as client:
            start_gate.wait()
            began = time.perf_counter()
            for n in numbers:
                try:
                    ids.append(submit(client, n)["id"])
                except (RuntimeError, httpx.HTTPError) as exc:
                    local_failures.append(f"submit {n}: {exc!r}")
            for job_id in ids:
                try:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise RuntimeError("not final before the run's deadline")
                    failure = check_job(wait_final(client, job_id, timeout=min(120.0, remaining)))
                except (RuntimeError, httpx.HTTPError) as exc:
                    failure = f"wait {job_id}: {exc!r}"
                if failure:
                    local_failures.append(failure)
            ended = time.perf_counter()
        with lock:
            failures.extend(local_failures)
            first_submit.append(began)
            last_final.append(ended)

    threads = [threading.Thread(target=client_thread, args=(i,), daemon=True) for i in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(1.0, deadline + 30 - time.monotonic()))
    if len(last_final) != args.threads:
        failures.append(f"{args.threads - len(last_final)} client threads did not finish in time")
        return float("nan"), failures
    return max(last_final) - min(first_submit), failures


def run_switchyard(
    procs: ProcessGroup, var_dir: Path, redis_url: str, args: argparse.Namespace
) -> SideResult:
    database = "PostgreSQL" if args.database_url else "SQLite"
    console.print(f"[bold]Switchyard[/] ({database}): starting emulator, API and worker (prefork, -c 2)")
    database_url = create_database(args.database_url) if args.database_url else ""
    try:
        stack = start_switchyard(procs, var_dir, redis_url, database_url)
        result = run_switchyard_sequential(stack, args)
        console.print(f"  sequential: {len(result.latencies_ms)} round trips done")
        procs.check_alive()
        cpu_before = cpu_snapshot(procs)
        elapsed, failures = run_switchyard_throughput(stack, args)
        result.cpu_s = cpu_delta(cpu_before, cpu_snapshot(procs))
        console.print(f"  throughput: {args.inflight} jobs in {elapsed:.2f}s")
        procs.check_alive()
        result.jobs, result.elapsed_s = args.inflight, elapsed
        result.failures.extend(failures)
        return result
    finally:
        procs.stop_all()
        if database_url:
            drop_database(args.database_url, database_url)


# --- report --------------------------------------------------------------------------------


def report(bare: SideResult, sy: SideResult, args: argparse.Namespace) -> str:
    table = Table(title=f"Per-job overhead ({os.cpu_count()} cores, Redis {args.redis_url})")
    table.add_column("figure")
    table.add_column("bare Celery", justify="right")
    table.add_column("Switchyard", justify="right")
    table.add_column("ratio", justify="right")
    rows = [
        ("sequential p50 (ms)", bare.p50, sy.p50),
        ("sequential p99 (ms)", bare.p99, sy.p99),
        ("throughput (jobs/s)", bare.jobs_s, sy.jobs_s),
    ]
    for name, bare_value, sy_value in rows:
        table.add_row(name, f"{bare_value:.2f}", f"{sy_value:.2f}", f"{sy_value / bare_value:.2f}")
    table.add_row("failures", str(len(bare.failures)), str(len(sy.failures)), "")
    console.print(table)

    stages = Table(title="Switchyard sequential job, by stage (server timestamps)")
    stages.add_column("stage")
    stages.add_column("p50 (ms)", justify="right")
    stages.add_column("p99 (ms)", justify="right")
    for name, values in sy.stages_ms.items():
        stages.add_row(name, f"{percentile(values, 50):.2f}", f"{percentile(values, 99):.2f}")
    console.print(stages)

    cpu = Table(title="CPU per job in the throughput phase (ms, all processes share the cores)")
    cpu.add_column("process")
    cpu.add_column("bare Celery", justify="right")
    cpu.add_column("Switchyard", justify="right")
    names = list(dict.fromkeys([*bare.cpu_s, *sy.cpu_s]))
    for name in [*names, "total"]:
        cells = []
        for side in (bare, sy):
            seconds = sum(side.cpu_s.values()) if name == "total" else side.cpu_s.get(name)
            cells.append("" if seconds is None else f"{seconds * 1000 / side.jobs:.2f}")
        cpu.add_row(name, *cells)
    console.print(cpu)

    overhead_ratio = sy.p50 / bare.p50
    throughput_ratio = sy.jobs_s / bare.jobs_s
    for label, value, ok, target in (
        ("overhead_ratio_p50", overhead_ratio, overhead_ratio <= TARGET_OVERHEAD_RATIO_P50, "<= 2.5"),
        ("throughput_ratio", throughput_ratio, throughput_ratio >= TARGET_THROUGHPUT_RATIO, ">= 0.4"),
    ):
        verdict = "[green]met[/]" if ok else "[red]missed[/]"
        console.print(f"target {label} {target}: {value:.2f} {verdict}")
    return (
        f"overhead_ratio_p50={overhead_ratio:.3f} throughput_ratio={throughput_ratio:.3f} "
        f"bare_p50_ms={bare.p50:.3f} bare_p99_ms={bare.p99:.3f} bare_jobs_s={bare.jobs_s:.1f} "
        f"switchyard_p50_ms={sy.p50:.3f} switchyard_p99_ms={sy.p99:.3f} switchyard_jobs_s={sy.jobs_s:.1f}"
    )


@contextlib.contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so the ``finally`` blocks stop every subprocess."""

    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    redis = Redis.from_url(args.redis_url)
    redis.ping()
    redis.flushdb()
    work_dir = Path(tempfile.mkdtemp(prefix="switchyard-bench-"))
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(ROOT), str(BENCH_DIR), os.environ.get("PYTHONPATH")])
        ),
    }
    procs = ProcessGroup(work_dir, env)
    ok = False
    try:
        with sigterm_as_exit():
            bare = run_bare(procs, args.redis_url, args)
            redis.flushdb()
            sy = run_switchyard(procs, work_dir, args.redis_url, args)
        last_line = report(bare, sy, args)
        failures = bare.failures + sy.failures
        if failures:
            console.print(f"[red bold]{len(failures)} jobs failed[/]; the figures are not valid:")
            for failure in failures[:50]:
                console.print(f"  {failure}", markup=False)
        ok = not failures
    finally:
        procs.stop_all()
        redis.flushdb()
        redis.close()
        if args.keep or not ok:
            console.print(f"logs kept in {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
    print(last_line, flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
