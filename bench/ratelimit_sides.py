"""The two sides of ``bench/ratelimit.py``, each with its own rate-limited provider emulator.

- :class:`SwitchyardLimited`: Switchyard's real processes (API, N workers, beat) serving a
  tier whose only model has ``rpm`` and ``tpm`` in the config, the same limits the emulator
  enforces; jobs go in through ``POST /v1/jobs`` and come back through the long-poll.
- :class:`CeleryBaseline`: N plain Celery workers running ``ratelimit_baseline_app``, whose
  task calls the emulator through the ``openai`` SDK with ``rate_limit`` set to the limit.

Both warm up on a second model name (the emulator keeps one window per model), then reset
the emulator, so the measured model starts with a fresh window and zeroed counters.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from celery import Celery
from celery.exceptions import TimeoutError as CeleryTimeoutError
from ratelimit_baseline_app import (
    BASE_URL_ENV,
    BASELINE_QUEUE,
    BASELINE_TASK,
    RATE_ENV,
    REDIS_URL_ENV,
    make_baseline_app,
)
from switchyard_side import epoch_s, prepare, submit, wait_final

from infra.launch import ProcessGroup, api_argv, celery_argv, emulator_argv, free_port, wait_http, worker_argv
from workers.keys import RedisKeys, tier_queues

MODEL = "emu-limited"  # the measured model, on both sides
WARM_MODEL = "emu-warm"  # warm-up calls go here, so they spend nothing of MODEL's window
TIER, WARM_TIER = "ratelimited", "warm"

CONFIG = """\
# Written by bench/ratelimit.py: a model with the provider's limits, and one to warm up on.
[providers.emulator]
kind = "openai"
base_url = "{emulator_url}/v1"
api_key = "emulator-key"
timeout_s = 30

[models.{model}]
provider = "emulator"
model = "{model}"
rpm = {rpm}
tpm = {tpm}
input_usd_per_mtok = 0.15
output_usd_per_mtok = 0.60

[models.{warm_model}]
provider = "emulator"
model = "{warm_model}"

[tiers.{tier}]
models = ["{model}"]
default_max_tokens = {max_tokens}
# As many tries as the baseline task gets (1 + max_retries 3); a hand-back for capacity is no try.
attempts_per_model = 4
# API admission control would refuse a 2,000-job live backlog; this benchmark wants it queued.
max_queue_seconds = 100000

[tiers.{warm_tier}]
models = ["{warm_model}"]
default_max_tokens = 16
"""


@dataclass(frozen=True)
class Limits:
    """The provider's limits per window, and its latency."""

    rpm: int
    tpm: int
    window_s: float
    latency_ms: float

    @property
    def per_s(self) -> float:
        """Requests per second the limit allows on average."""
        return self.rpm / self.window_s


@dataclass(frozen=True)
class Outcome:
    """One job: whether it succeeded, and when its successful call started and ended (epoch s)."""

    ok: bool
    started: float = math.nan
    finished: float = math.nan
    attempts: int = 0  # Switchyard's count of tries (a hand-back for capacity is none); 0: unknown
    failure: str = ""


class Tally:
    """Jobs seen final so far, counted from the client threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.done = 0

    def add(self) -> None:
        with self._lock:
            self.done += 1


class Emulator:
    """A provider emulator of our own with the limits and latency, on a free port."""

    def __init__(self, procs: ProcessGroup, name: str, limits: Limits) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        limit_args = ["--rpm", str(limits.rpm), "--tpm", str(limits.tpm)]
        limit_args += ["--latency-ms", f"{limits.latency_ms:g}", "--window-s", f"{limits.window_s:g}"]
        procs.start(name, [*emulator_argv(port), *limit_args])

    def wait_ready(self, alive: Callable[[], None]) -> None:
        wait_http(f"{self.url}/emulator/stats", alive=alive)

    def stats(self) -> dict[str, Any]:
        """Requests, by status, by model and tokens since the last reset."""
        response = httpx.get(f"{self.url}/emulator/stats", timeout=10)
        response.raise_for_status()
        return dict(response.json())

    def reset(self) -> None:
        """Zero the counters and empty every rate-limit window."""
        httpx.post(f"{self.url}/emulator/reset", timeout=10).raise_for_status()


def wait_workers(redis_url: str, names: list[str], alive: Callable[[], None], timeout: float = 180.0) -> None:
    """Wait until every worker ``names`` (``-n`` names without the host) answers a ping."""
    probe = Celery(broker=redis_url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            alive()
            replies = probe.control.ping(timeout=1.0)
            answered = {name.split("@", 1)[0] for reply in replies for name in reply}
            if answered.issuperset(names):
                return
        raise TimeoutError(f"workers {sorted(names)} did not all answer a ping in {timeout:.0f}s")
    finally:
        probe.close()


def run_threads(count: int, target: Callable[[int], None]) -> None:
    """Run ``target(i)`` in ``count`` threads; re-raise the first exception any of them raised."""
    errors: list[BaseException] = []

    def guarded(index: int) -> None:
        try:
            target(index)
        except BaseException as exc:  # handed to the caller below
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


class SwitchyardLimited:
    """Switchyard's emulator, API, ``workers`` prefork workers and beat, with the limits in config."""

    name = "Switchyard"

    def __init__(
        self,
        procs: ProcessGroup,
        var_dir: Path,
        redis_url: str,
        database_url: str,
        limits: Limits,
        workers: int,
        concurrency: int,
        max_tokens: int,
    ) -> None:
        """Migrate, make a tenant key and start the processes; returns once the API is ready."""
        self.procs = procs
        self.redis_url = redis_url
        self.max_tokens = max_tokens
        self.submit_s = math.nan
        self.emulator = Emulator(procs, "sy-emulator", limits)
        config = CONFIG.format(
            emulator_url=self.emulator.url,
            model=MODEL,
            warm_model=WARM_MODEL,
            rpm=limits.rpm,
            tpm=limits.tpm,
            tier=TIER,
            warm_tier=WARM_TIER,
            max_tokens=max_tokens,
        )
        deployment = prepare(var_dir, redis_url, database_url, config, self.emulator.url)
        self.key = deployment.key
        env = {
            **deployment.env,
            "SWITCHYARD_RATE_LIMITS__WINDOW_S": f"{limits.window_s:g}",
        }
        api_port = free_port()
        self.api_url = f"http://127.0.0.1:{api_port}"
        procs.start("sy-api", api_argv(api_port, log_level="warning"), env=env)
        queues = [*tier_queues(TIER), *tier_queues(WARM_TIER)]
        queues.append(RedisKeys(deployment.key_prefix).maintenance_queue)
        self.worker_names = [f"rl-sy-{index}" for index in range(workers)]
        for name in self.worker_names:
            procs.start(name, worker_argv(queues, concurrency, name, log_level="WARNING"), env=env)
        beat_schedule = str(var_dir / "beat-schedule")
        procs.start("sy-beat", celery_argv("beat", "-s", beat_schedule, log_level="WARNING"), env=env)
        self.emulator.wait_ready(procs.check_alive)
        wait_http(f"{self.api_url}/readyz", alive=procs.check_alive)

    def client(self) -> httpx.Client:
        """A keep-alive client with the tenant key."""
        return httpx.Client(
            base_url=self.api_url,
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=httpx.Timeout(90.0),
            limits=httpx.Limits(max_keepalive_connections=2, max_connections=2),
        )

    def warm_up(self, count: int) -> None:
        """Wait for every worker, run ``count`` jobs on the warm-up model, then reset the emulator."""
        wait_workers(self.redis_url, self.worker_names, self.procs.check_alive)
        with self.client() as client:
            ids = [submit(client, -1 - n, WARM_TIER)["id"] for n in range(count)]
            for job_id in ids:
                job = wait_final(client, job_id, timeout=120)
                if job["status"] != "succeeded":
                    raise RuntimeError(f"warm-up job {job_id} ended {job['status']}: {job.get('error')}")
        self.emulator.reset()

    def run(self, jobs: int, threads: int, tally: Tally, deadline_s: float) -> list[Outcome]:
        """Submit ``jobs`` live jobs from ``threads`` clients, then long-poll each until final."""
        outcomes: list[Outcome] = []
        submitted: list[float] = []
        lock = threading.Lock()
        started = time.monotonic()
        deadline = started + deadline_s

        def client_thread(index: int) -> None:
            local: list[Outcome] = []
            with self.client() as client:
                ids = [submit(client, n, TIER, self.max_tokens)["id"] for n in range(index, jobs, threads)]
                with lock:
                    submitted.append(time.monotonic())
                for job_id in ids:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        local.append(Outcome(False, failure=f"job {job_id}: not final by the deadline"))
                        continue
                    job = wait_final(client, job_id, timeout=min(120.0, remaining))
                    local.append(outcome_of(job))
                    tally.add()
            with lock:
                outcomes.extend(local)

        run_threads(threads, client_thread)
        self.submit_s = max(submitted) - started
        return outcomes


def outcome_of(job: dict[str, Any]) -> Outcome:
    """A Switchyard job as an outcome; its call started ``latency_ms`` before it finished."""
    attempts = int(job.get("attempts") or 0)
    if job["status"] != "succeeded":
        error = job.get("error") or {}
        failure = f"job {job['id']}: {job['status']} {error.get('code')}: {error.get('message')}"
        return Outcome(False, attempts=attempts, failure=failure)
    finished = epoch_s(job["finished_at"])
    return Outcome(True, finished - float(job["latency_ms"] or 0) / 1000, finished, attempts)


class CeleryBaseline:
    """Plain Celery: ``workers`` prefork workers of ``ratelimit_baseline_app`` and a client app."""

    name = "plain Celery"

    def __init__(
        self,
        procs: ProcessGroup,
        redis_url: str,
        limits: Limits,
        workers: int,
        concurrency: int,
        max_tokens: int,
    ) -> None:
        """Start the emulator and the workers; :meth:`warm_up` waits until they answer."""
        self.procs = procs
        self.redis_url = redis_url
        self.max_tokens = max_tokens
        self.submit_s = math.nan
        self.emulator = Emulator(procs, "baseline-emulator", limits)
        self.rate = f"{limits.per_s:g}/s"  # the provider's limit per second, per worker instance
        env = {REDIS_URL_ENV: redis_url, BASE_URL_ENV: f"{self.emulator.url}/v1", RATE_ENV: self.rate}
        self.worker_names = [f"rl-base-{index}" for index in range(workers)]
        for name in self.worker_names:
            argv = worker_argv(
                [BASELINE_QUEUE], concurrency, name, app="ratelimit_baseline_app", log_level="WARNING"
            )
            procs.start(name, argv, env=env)
        self.app = make_baseline_app(redis_url)
        self.chat = self.app.tasks[BASELINE_TASK]
        self.emulator.wait_ready(procs.check_alive)

    def warm_up(self, count: int) -> None:
        """Wait for every worker, run ``count`` tasks on the warm-up model, then reset the emulator."""
        wait_workers(self.redis_url, self.worker_names, self.procs.check_alive)
        results = [self.chat.apply_async((WARM_MODEL, f"warm-up {n}", 16)) for n in range(count)]
        for result in results:
            result.get(timeout=120)
        self.emulator.reset()

    def run(self, jobs: int, tally: Tally, deadline_s: float) -> list[Outcome]:
        """``apply_async`` ``jobs`` tasks, then ``get`` each (``propagate=False``)."""
        started = time.monotonic()
        deadline = started + deadline_s
        results = [self.chat.apply_async((MODEL, f"benchmark job {n}", self.max_tokens)) for n in range(jobs)]
        self.submit_s = time.monotonic() - started
        outcomes: list[Outcome] = []
        for result in results:
            remaining = deadline - time.monotonic()
            try:
                value = result.get(timeout=max(0.1, remaining), propagate=False)
            except CeleryTimeoutError:
                outcomes.append(Outcome(False, failure=f"task {result.id}: not final by the deadline"))
                continue
            if result.successful():
                outcomes.append(Outcome(True, float(value["started"]), float(value["finished"])))
            else:  # the task exhausted its retries (or failed otherwise): a failed job
                outcomes.append(Outcome(False, failure=f"task {result.id}: {value!r}"))
            tally.add()
        return outcomes

    def close(self) -> None:
        """Close the client app's connections (the workers stop with the process group)."""
        self.app.close()
