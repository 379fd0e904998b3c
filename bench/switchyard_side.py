"""The Switchyard side of ``bench/overhead.py``: emulator, API and worker, warm-up and measured rounds."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import psycopg
from lean_http import LeanClient
from results import SequentialRound
from sqlmodel import Session

from api.keys import create_key, create_tenant
from infra.launch import ProcessGroup, api_argv, emulator_argv, free_port, wait_http, worker_argv
from schemas.settings import Settings, load_settings
from workers.db import make_engine
from workers.keys import RedisKeys, tier_queues
from workers.migrate import upgrade

TIER = "bench"
MODEL_ALIAS = "emu-bench"
FINAL = frozenset({"succeeded", "failed", "canceled"})
WARMUP_BURST = 8
BULK_TENANT = 1_000_000_000  # the benchmark tenant's submissions per minute and running jobs
THROUGHPUT_DEADLINE_S = 300.0  # a stuck round fails its remaining jobs instead of hanging
PROCESSES = frozenset(
    {"benchmark client", "emulator", "api", "switchyard-worker", "Redis server", "PostgreSQL server"}
)
STAGES = (
    "POST /v1/jobs answered",
    "created -> started (queue, claim)",
    "started -> finished (chain, call, settle)",
    "finished -> client has it",
)

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


def create_database(admin_url: str) -> str:
    """A fresh PostgreSQL database next to ``admin_url``; returns its URL."""
    name = f"switchyard_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return f"{admin_url.rsplit('/', 1)[0]}/{name}"


def drop_database(admin_url: str, url: str) -> None:
    """Drop the database ``url`` made by :func:`create_database`."""
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def tenant_key(settings: Settings) -> str:
    """A new tenant and an API key with submit and read scopes.

    The tenant's own limits are lifted, as an operator would for one bulk client: the
    per-tenant submission rate and running-jobs caps would otherwise meter the benchmark.
    """
    engine = make_engine(settings)
    try:
        with Session(engine) as session:
            tenant = create_tenant(
                session, f"bench-{settings.key_prefix}", rpm_limit=BULK_TENANT, max_running_jobs=BULK_TENANT
            )
            session.flush()
            key = create_key(session, tenant.id, {"submit", "read"})
            session.commit()
    finally:
        engine.dispose()
    return key


class JSONResponse(Protocol):
    """What the helpers read from an answer: ``httpx.Response`` and ``LeanResponse`` alike."""

    @property
    def status_code(self) -> int: ...

    @property
    def text(self) -> str: ...

    def json(self) -> Any: ...


class JSONClient(Protocol):
    """A keep-alive client with the tenant key: ``LeanClient`` here, ``httpx.Client`` elsewhere."""

    def post(self, url: str, *, json: Any) -> JSONResponse: ...

    def get(self, url: str, *, params: dict[str, Any]) -> JSONResponse: ...


def job_body(n: int, tier: str = TIER, max_tokens: int | None = None) -> dict[str, Any]:
    """A job with distinct content and cache off: it goes through the worker and the provider."""
    content = f"benchmark job {n} {uuid.uuid4().hex[:8]}"
    request: dict[str, Any] = {"messages": [{"role": "user", "content": content}]}
    if max_tokens is not None:
        request["max_tokens"] = max_tokens
    return {"tier": tier, "cache": "off", "request": request}


def submit(client: JSONClient, n: int, tier: str = TIER, max_tokens: int | None = None) -> dict[str, Any]:
    """POST job ``n`` to ``tier``; the accepted job."""
    response = client.post("/v1/jobs", json=job_body(n, tier, max_tokens))
    if response.status_code != 202:
        raise RuntimeError(f"submit answered {response.status_code}: {response.text[:300]}")
    return dict(response.json())


def wait_final(client: JSONClient, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
    """Long-poll the job until its status is final or ``timeout`` passes."""
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


@dataclass(frozen=True)
class Deployment:
    """A migrated Switchyard database with a tenant key, and the environment of its processes."""

    key: str
    key_prefix: str
    env: dict[str, str]


def prepare(var_dir: Path, redis_url: str, database_url: str, config: str, emulator_url: str) -> Deployment:
    """Write ``config`` as the TOML config in ``var_dir``, migrate and make a tenant key."""
    config_file = var_dir / "switchyard-bench.toml"
    config_file.write_text(config)
    key_prefix = f"sybench{uuid.uuid4().hex[:8]}"
    settings = load_settings(
        config_file=config_file,
        var_dir=var_dir,
        redis_url=redis_url,
        database_url=database_url,
        key_prefix=key_prefix,
    )
    upgrade(settings)
    env = {
        "SWITCHYARD_CONFIG_FILE": str(config_file),
        "SWITCHYARD_VAR_DIR": str(var_dir),
        "SWITCHYARD_REDIS_URL": redis_url,
        "SWITCHYARD_DATABASE_URL": database_url,
        "SWITCHYARD_KEY_PREFIX": key_prefix,
        "SWITCHYARD_PROVIDERS__EMULATOR__BASE_URL": f"{emulator_url}/v1",
    }
    return Deployment(tenant_key(settings), key_prefix, env)


def epoch_s(stamp: str | None) -> float:
    """An ISO timestamp as epoch seconds (NaN for none)."""
    if not stamp:
        return float("nan")
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


class SwitchyardSide:
    """Switchyard's real processes: emulator, API and one worker (prefork, two processes)."""

    name = "Switchyard"
    tier = TIER  # the tier its jobs go to (bench/observed_stack.py runs two sides on two tiers)

    def __init__(self, procs: ProcessGroup, var_dir: Path, redis_url: str, database_url: str) -> None:
        """Migrate, make a tenant key and start the processes; returns once the API is ready."""
        api_port, emulator_port = free_port(), free_port()
        emulator_url = f"http://127.0.0.1:{emulator_port}"
        config = BENCH_CONFIG.format(emulator_url=emulator_url, alias=MODEL_ALIAS, tier=TIER)
        deployment = prepare(var_dir, redis_url, database_url, config, emulator_url)
        self.key = deployment.key
        self.api_url = f"http://127.0.0.1:{api_port}"
        self.next_n = 0
        env = deployment.env
        procs.start("emulator", emulator_argv(emulator_port), env=env)
        procs.start("api", api_argv(api_port, log_level="warning"), env=env)
        queues = tier_queues(TIER)
        queues.append(RedisKeys(deployment.key_prefix).maintenance_queue)
        procs.start("switchyard-worker", worker_argv(queues, 2, "switchyard", log_level="WARNING"), env=env)
        wait_http(f"{emulator_url}/emulator/stats", alive=procs.check_alive)
        wait_http(f"{self.api_url}/readyz", alive=procs.check_alive)
        procs.check_alive()

    def client(self) -> LeanClient:
        """A keep-alive client with the tenant key (bench/lean_http.py: harness CPU kept low)."""
        return LeanClient(self.api_url, {"Authorization": f"Bearer {self.key}"}, timeout=30.0)

    def numbers(self, count: int) -> range:
        """``count`` job numbers not used before in this run."""
        first, self.next_n = self.next_n, self.next_n + count
        return range(first, first + count)

    def warm_up(self, count: int) -> list[str]:
        """Wait for the worker, run a burst and ``count`` round trips; returns failures."""
        failures: list[str] = []
        with self.client() as client:
            first = submit(client, -1, self.tier)
            failure = check_job(wait_final(client, first["id"], timeout=90))  # the worker is up after this
            if failure:
                failures.append(f"warm-up {failure}")
            # A burst first, so both pool processes have run a job (the first job of a pool process
            # pays its imports and connections), then sequential warm-up round trips.
            burst = [submit(client, -2 - n, self.tier)["id"] for n in range(WARMUP_BURST)]
            for n in self.numbers(count):
                wait_final(client, submit(client, n, self.tier)["id"])
            for job_id in burst:
                failure = check_job(wait_final(client, job_id))
                if failure:
                    failures.append(f"warm-up {failure}")
        return failures

    def sequential(self, count: int) -> SequentialRound:
        """``count`` submit-then-long-poll round trips, one at a time, with server-side stages."""
        measured = SequentialRound([], [], {stage: [] for stage in STAGES})
        with self.client() as client:
            for n in self.numbers(count):
                started = time.perf_counter()
                job_id = submit(client, n, self.tier)["id"]
                posted = time.perf_counter()
                job = wait_final(client, job_id)
                done = time.perf_counter()
                done_wall = time.time()
                measured.latencies_ms.append((done - started) * 1000)
                failure = check_job(job)
                if failure:
                    measured.failures.append(failure)
                    continue
                created, began, finished = (
                    epoch_s(job[name]) for name in ("created_at", "started_at", "finished_at")
                )
                for stage, value in zip(
                    STAGES,
                    (posted - started, began - created, finished - began, done_wall - finished),
                    strict=True,
                ):
                    measured.stages_ms[stage].append(value * 1000)
        return measured

    def throughput(self, count: int, threads: int) -> tuple[float, list[str]]:
        """Submit ``count`` jobs from ``threads`` clients, then wait on each; (seconds, failures)."""
        failures: list[str] = []
        first_submit: list[float] = []
        last_final: list[float] = []
        lock = threading.Lock()
        threads = max(1, min(threads, count))
        start_gate = threading.Barrier(threads)
        deadline = time.monotonic() + THROUGHPUT_DEADLINE_S
        numbers = self.numbers(count)

        def client_thread(index: int) -> None:
            local_failures: list[str] = []
            ids: list[str] = []
            with self.client() as client:
                start_gate.wait()
                began = time.perf_counter()
                for n in numbers[index::threads]:
                    try:
                        ids.append(submit(client, n, self.tier)["id"])
                    except RuntimeError as exc:  # HTTPFailure included
                        local_failures.append(f"submit {n}: {exc!r}")
                for job_id in ids:
                    try:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            raise RuntimeError("not final before the round's deadline")
                        failure = check_job(wait_final(client, job_id, timeout=min(120.0, remaining)))
                    except RuntimeError as exc:  # HTTPFailure included
                        failure = f"wait {job_id}: {exc!r}"
                    if failure:
                        local_failures.append(failure)
                ended = time.perf_counter()
            with lock:
                failures.extend(local_failures)
                first_submit.append(began)
                last_final.append(ended)

        workers = [threading.Thread(target=client_thread, args=(i,), daemon=True) for i in range(threads)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join(timeout=max(1.0, deadline + 30 - time.monotonic()))
        if len(last_final) != threads:
            failures.append(f"{threads - len(last_final)} client threads did not finish in time")
            return float("nan"), failures
        return max(last_final) - min(first_submit), failures
