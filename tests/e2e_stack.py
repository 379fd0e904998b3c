"""A real deployment for end-to-end tests: emulator, API (uvicorn), Celery workers, beat.

Every process is a subprocess on loopback, sharing one SQLite file and the test Redis db.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis
from sqlalchemy import select
from sqlmodel import Session
from tests_support import TEST_CONFIG, make_test_settings, new_tenant_key

from api.keys import create_key, create_tenant
from infra.launch import (
    ProcessGroup,
    api_argv,
    celery_argv,
    emulator_argv,
    free_port,
    local_worker_argv,
    wait_http,
    webhook_worker_argv,
    worker_argv,
)
from schemas.jobs import FINAL_STATUSES
from schemas.settings import Settings
from workers.db import make_engine
from workers.keys import RedisKeys, tier_queues
from workers.migrate import upgrade
from workers.usage_sources import USAGE

ROOT = Path(__file__).resolve().parents[1]
# Converted local weights are shared with `make run` (var/models), so they convert once per clone.
MODEL_DIR = ROOT / "var" / "models"
# The local model's tiers (chat and embeddings) share one threads worker, as batching wants.
LOCAL_QUEUES = [*tier_queues("local"), *tier_queues("embed")]
EMULATOR_TIERS = ["small", "retry", "slow", "bad", "embed-emu", "provider_lane"]
# Compressed timings of the stack's processes (SWITCHYARD_<NAME> in their environment).
STACK_TIMING = {
    "reconcile_interval_s": "1",
    "orphan_grace_s": "2",
    "backoff_base_s": "0.05",
    "backoff_max_s": "0.5",
    "task_soft_time_limit_s": "8",
    "task_time_limit_s": "10",
    "lease_s": "12",
    # Rate-limit windows of 2 s (only models with limits have any), and tenants that the
    # suite's bursts of submissions do not trip.
    "rate_limits__window_s": "2",
    "rate_limits__tenant_rpm": "100000",
    # SSE keep-alives every second, so test readers notice a close promptly.
    "streaming__keepalive_s": "1",
    # The provider batch lane: a pass a second; 8 jobs fill a batch, fewer go after 10 s
    # (a margin for a loaded machine: the 8 must all join before the first is 10 s old).
    "provider_batches__poll_interval_s": "1",
    "provider_batches__max_lines": "8",
    "provider_batches__max_wait_s": "10",
    "provider_batches__resend_after_s": "5",
    # Webhooks: loopback receivers allowed (tests only), and a compressed retry schedule
    # of five attempts (the fourth comes 2 s after the third), swept every 0.2 s.
    "webhooks__allow_loopback": "true",
    "webhooks__retry_schedule_s": "[0, 0.3, 0.3, 2, 0.3]",
    "webhooks__jitter": "0",
    "webhooks__sweep_interval_s": "0.2",
}
# The local model's worker gets longer task limits: a batched generation on a loaded machine
# takes tens of seconds.
LOCAL_LIMITS = {
    "SWITCHYARD_TASK_SOFT_TIME_LIMIT_S": "100",
    "SWITCHYARD_TASK_TIME_LIMIT_S": "120",
    "SWITCHYARD_LEASE_S": "150",
}


@dataclass
class Stack:
    """The running deployment and helpers to drive it."""

    settings: Settings
    api_url: str
    emulator_url: str
    processes: ProcessGroup
    keys: dict[str, str] = field(default_factory=dict)
    metrics_ports: dict[str, int] = field(default_factory=dict)  # worker process -> its metrics port

    @property
    def log_dir(self) -> Path:
        return self.processes.log_dir

    def kill(self, name: str) -> None:
        """kill -9 a process and its children, as a machine crash would."""
        self.processes.kill(name)

    def start_emulator_worker(self) -> None:
        queues = [queue for tier in EMULATOR_TIERS for queue in tier_queues(tier)]
        queues.append(RedisKeys(self.settings.key_prefix).maintenance_queue)
        self.processes.start(
            "worker-emu", self.with_metrics_port("worker-emu", worker_argv(queues, 2, "emu"))
        )

    def with_metrics_port(self, name: str, argv: list[str]) -> list[str]:
        """``argv`` serving its node's metrics on a free port, noted in :attr:`metrics_ports`."""
        self.metrics_ports[name] = free_port()
        return [*argv, "--metrics-port", str(self.metrics_ports[name])]

    def start_workers(self, name: str, count: int, tiers: list[str]) -> list[str]:
        """Start ``count`` single-process workers for ``tiers``; their process names."""
        queues = [queue for tier in tiers for queue in tier_queues(tier)]
        names = [f"{name}-{index}" for index in range(count)]
        for worker in names:
            self.processes.start(worker, worker_argv(queues, 1, worker))
        return names

    @contextmanager
    def warm_workers(self, name: str, count: int, tiers: list[str], warm_tier: str) -> Iterator[list[str]]:
        """:meth:`start_workers`, each warmed up by jobs on ``warm_tier`` first; stopped after."""
        names = self.start_workers(name, count, tiers)
        try:
            warm = [self.submit(warm_tier, f"warm-up {i}") for i in range(2 * count)]
            assert all(self.wait_final(job["id"])["status"] == "succeeded" for job in warm)
            yield names
        finally:
            for worker in names:
                self.processes.stop(worker)

    def post(self, path: str, key: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(
            self.api_url + path, headers={"Authorization": f"Bearer {key}"}, timeout=30, **kwargs
        )

    def get(self, path: str, key: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(
            self.api_url + path, headers={"Authorization": f"Bearer {key}"}, timeout=90, **kwargs
        )

    def submit(
        self, tier: str, content: str, key: str | None = None, cache: str = "off", **request: Any
    ) -> dict[str, Any]:
        """Submit a job and expect it queued; the cache is off unless a test is about it."""
        body = {
            "tier": tier,
            "cache": cache,
            "request": {"messages": [{"role": "user", "content": content}], **request},
        }
        response = self.post("/v1/jobs", key or self.keys["a"], json=body)
        assert response.status_code == 202, response.text
        return dict(response.json())

    def wait_final(self, job_id: str, key: str | None = None, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            job = self.get(
                f"/v1/jobs/{job_id}", key or self.keys["a"], params={"wait": min(20, max(remaining, 0))}
            ).json()
            if job["status"] in FINAL_STATUSES or remaining <= 0:
                return dict(job)

    def emulator(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = httpx.request(method, self.emulator_url + path, timeout=10, **kwargs)
        response.raise_for_status()
        return dict(response.json())


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Stack]:
    """Start every process once per test run; stop them all at the end."""
    var_dir = tmp_path_factory.mktemp("stack")
    api_port, emulator_port = free_port(), free_port()
    emulator_url = f"http://127.0.0.1:{emulator_port}"
    key_prefix = make_test_settings(var_dir, redis_url).key_prefix
    settings = make_test_settings(var_dir, redis_url, key_prefix=key_prefix, model_dir=MODEL_DIR)
    upgrade(settings)
    processes = ProcessGroup(log_dir=var_dir, env=stack_env(var_dir, redis_url, key_prefix, emulator_url))
    stack = Stack(settings, f"http://127.0.0.1:{api_port}", emulator_url, processes)
    stack.keys = _tenants(settings)
    try:
        start_stack(stack, api_port, emulator_port)
        yield stack
    finally:
        processes.stop_all()
        Redis.from_url(redis_url).flushdb()


def stack_env(var_dir: Path, redis_url: str, key_prefix: str, emulator_url: str) -> dict[str, str]:
    """The environment of every process of the stack: its config, stores, emulator and timings."""
    return {
        **os.environ,
        "SWITCHYARD_CONFIG_FILE": str(TEST_CONFIG),
        "SWITCHYARD_VAR_DIR": str(var_dir),
        "SWITCHYARD_REDIS_URL": redis_url,
        "SWITCHYARD_DATABASE_URL": "",
        "SWITCHYARD_KEY_PREFIX": key_prefix,
        "SWITCHYARD_PROVIDERS__EMULATOR__BASE_URL": f"{emulator_url}/v1",
        "SWITCHYARD_PROVIDERS__EMULATOR_BATCH__BASE_URL": f"{emulator_url}/v1",
        "SWITCHYARD_MODEL_DIR": str(MODEL_DIR),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        **{f"SWITCHYARD_{k.upper()}": v for k, v in STACK_TIMING.items()},
    }


def start_stack(stack: Stack, api_port: int, emulator_port: int) -> None:
    """Start the emulator, the API, the workers and beat, and wait until the API is ready."""
    processes, settings = stack.processes, stack.settings
    processes.start("emulator", emulator_argv(emulator_port))
    processes.start("api", api_argv(api_port, log_level="warning"))
    stack.start_emulator_worker()
    local_worker = local_worker_argv(LOCAL_QUEUES, settings.providers["local"].max_batch_size, "local")
    processes.start("worker-local", stack.with_metrics_port("worker-local", local_worker), env=LOCAL_LIMITS)
    webhooks = webhook_worker_argv(RedisKeys(settings.key_prefix).webhook_queue, 4)
    processes.start("worker-webhooks", stack.with_metrics_port("worker-webhooks", webhooks))
    processes.start("beat", celery_argv("beat", "-s", str(processes.log_dir / "beat-schedule")))
    wait_http(f"{stack.emulator_url}/emulator/stats", alive=processes.check_alive)
    wait_http(f"{stack.api_url}/readyz", alive=processes.check_alive)


def _tenants(settings: Settings) -> dict[str, str]:
    engine = make_engine(settings)
    keys = {}
    with Session(engine) as session:
        for name in ("a", "b"):
            tenant = create_tenant(session, f"e2e-{name}-{settings.key_prefix}")
            session.flush()
            keys[name] = create_key(session, tenant.id, {"submit", "read", "admin"})
        session.commit()
    engine.dispose()
    return keys


@pytest.fixture
def e2e(stack: Stack) -> Iterator[Stack]:
    """The running stack, with the emulator's faults cleared before and after the test."""
    stack.emulator("DELETE", "/emulator/faults")
    yield stack
    stack.emulator("DELETE", "/emulator/faults")


@dataclass(frozen=True)
class SettledMix:
    """What :func:`settle_a_mix` left: a new tenant's jobs as workers ended them, the cache hit,
    and the tenant's usage rows."""

    tenant_id: str
    key: str
    ended: list[dict[str, Any]]  # a success, a success after two 503s, a permanent failure
    hit: dict[str, Any]  # the first job's request again, answered by the exact cache
    usage: list[Any]


def settle_a_mix(e2e: Stack, label: str) -> SettledMix:
    """Run, for a new tenant, a success, retries after 503s and a permanent failure through the
    stack's workers, then the first request again (an exact-cache hit at the API)."""
    engine = make_engine(e2e.settings)
    tenant_id, key = new_tenant_key(engine, {"submit", "read"})
    retry_503s = {"model": "emu-retry", "responses": [503, 503], "mode": "sequence"}
    e2e.emulator("POST", "/emulator/faults", json=retry_503s)
    e2e.emulator("POST", "/emulator/faults", json={"model": "emu-bad", "responses": [400], "mode": "always"})
    success = f"{label}: a plain success"
    jobs = [
        e2e.submit("small", success, key, cache="exact"),
        e2e.submit("retry", f"{label}: two 503s, then an answer", key),
        e2e.submit("bad", f"{label}: refused for good", key),
    ]
    ended = [e2e.wait_final(job["id"], key) for job in jobs]
    assert [job["status"] for job in ended] == ["succeeded", "succeeded", "failed"]
    body = {
        "tier": "small",
        "cache": "exact",
        "request": {"messages": [{"role": "user", "content": success}]},
    }
    hit = e2e.post("/v1/jobs", key, json=body)
    assert hit.status_code == 200 and hit.json()["cache"]["hit"] == "exact", hit.text
    with engine.connect() as connection:
        usage = connection.execute(select(USAGE).where(USAGE.c.tenant_id == tenant_id)).mappings().all()
    engine.dispose()
    return SettledMix(tenant_id, key, ended, hit.json(), list(usage))
