"""A real deployment for end-to-end tests: emulator, API (uvicorn), Celery workers, beat.

Every process is a subprocess on loopback, sharing one SQLite file and the test Redis db.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis
from sqlmodel import Session
from tests_support import TEST_CONFIG, make_test_settings

from api.keys import create_key, create_tenant
from schemas.jobs import FINAL_STATUSES
from schemas.settings import PRIORITIES, Settings, queue_name
from workers.db import make_engine
from workers.keys import RedisKeys
from workers.migrate import upgrade

ROOT = Path(__file__).resolve().parents[1]
# Converted local weights are shared with `make run` (var/models), so they convert once per clone.
MODEL_DIR = ROOT / "var" / "models"
EMULATOR_TIERS = ["small", "retry", "slow", "bad"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not come up in {timeout}s")


@dataclass
class Stack:
    """The running deployment and helpers to drive it."""

    settings: Settings
    env: dict[str, str]
    api_url: str
    emulator_url: str
    log_dir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115
        self.processes[name] = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**self.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self, name: str) -> None:
        """SIGKILL the process and its children, as a machine crash would."""
        process = self.processes.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop_all(self) -> None:
        for name in list(self.processes):
            process = self.processes.pop(name)
            with _quiet():
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=10)
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)

    def start_emulator_worker(self) -> None:
        queues = [queue_name(tier, p) for tier in EMULATOR_TIERS for p in PRIORITIES]
        queues.append(RedisKeys(self.settings.key_prefix).maintenance_queue)
        self.start("worker-emu", _celery("worker", "-Q", ",".join(queues), "-c", "2", "-n", "emu@%h"))

    def post(self, path: str, key: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(
            self.api_url + path, headers={"Authorization": f"Bearer {key}"}, timeout=30, **kwargs
        )

    def get(self, path: str, key: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(
            self.api_url + path, headers={"Authorization": f"Bearer {key}"}, timeout=90, **kwargs
        )

    def submit(self, tier: str, content: str, key: str | None = None, **request: Any) -> dict[str, Any]:
        body = {"tier": tier, "request": {"messages": [{"role": "user", "content": content}], **request}}
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


class _quiet:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


def _celery(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "workers.app", *args, "--loglevel", "INFO"]


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Stack]:
    """Start every process once per test run; stop them all at the end."""
    var_dir = tmp_path_factory.mktemp("stack")
    api_port, emulator_port = free_port(), free_port()
    emulator_url = f"http://127.0.0.1:{emulator_port}"
    timing = {
        "reconcile_interval_s": "1",
        "orphan_grace_s": "2",
        "backoff_base_s": "0.05",
        "backoff_max_s": "0.5",
        "task_soft_time_limit_s": "8",
        "task_time_limit_s": "10",
        "lease_s": "12",
    }
    settings = make_test_settings(var_dir, redis_url)
    env = {
        **os.environ,
        "SWITCHYARD_CONFIG_FILE": str(TEST_CONFIG),
        "SWITCHYARD_VAR_DIR": str(var_dir),
        "SWITCHYARD_REDIS_URL": redis_url,
        "SWITCHYARD_DATABASE_URL": "",
        "SWITCHYARD_KEY_PREFIX": settings.key_prefix,
        "SWITCHYARD_PROVIDERS__EMULATOR__BASE_URL": f"{emulator_url}/v1",
        "SWITCHYARD_MODEL_DIR": str(MODEL_DIR),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        **{f"SWITCHYARD_{k.upper()}": v for k, v in timing.items()},
    }
    settings = make_test_settings(var_dir, redis_url, key_prefix=settings.key_prefix, model_dir=MODEL_DIR)
    upgrade(settings)
    stack = Stack(settings, env, f"http://127.0.0.1:{api_port}", emulator_url, var_dir)
    stack.keys = _tenants(settings)
    local_limits = {
        "SWITCHYARD_TASK_SOFT_TIME_LIMIT_S": "100",
        "SWITCHYARD_TASK_TIME_LIMIT_S": "120",
        "SWITCHYARD_LEASE_S": "150",
    }
    try:
        stack.start("emulator", [sys.executable, "-m", "infra.emulator", "--port", str(emulator_port)])
        stack.start(
            "api",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "api.main:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(api_port),
                "--log-level",
                "warning",
            ],
        )
        stack.start_emulator_worker()
        stack.start(
            "worker-local",
            _celery("worker", "-Q", "tier.local.live,tier.local.batch", "-c", "1", "-n", "local@%h"),
            env=local_limits,
        )
        stack.start("beat", _celery("beat", "-s", str(var_dir / "beat-schedule")))
        wait_http(f"{emulator_url}/emulator/stats")
        wait_http(f"{stack.api_url}/readyz")
        yield stack
    finally:
        stack.stop_all()
        Redis.from_url(redis_url).flushdb()


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
