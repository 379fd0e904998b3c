"""Redis killed under load and restarted empty: the API answers 503 (never 500) while it is
down, and every accepted job ends, the lost ones running again within the bound.

The stack (emulator with 300 ms latency, API, a job worker, a maintenance worker, beat) runs
on a Redis server of this test's own (tests/redis_server.py); the machine's Redis is not
touched. Clients submit throughout; Redis gets SIGKILL a few seconds in and comes back
empty on the same port a few seconds later, losing every queued message, the deferred set,
the backlog counters and the limiter's and the cache's keys.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from redis import Redis
from redis_server import RedisServer, private_redis
from sqlalchemy import select
from tests_support import TEST_CONFIG, make_test_settings, new_tenant_key

from infra.launch import ProcessGroup, api_argv, celery_argv, emulator_argv, free_port, wait_http, worker_argv
from schemas.jobs import FINAL_STATUSES
from schemas.settings import PRIORITIES, Settings
from schemas.tables import utcnow
from workers.db import make_engine
from workers.keys import RedisKeys
from workers.migrate import upgrade
from workers.store import JOBS

TIER = "small"
LATENCY_MS = 300
RECONCILE_INTERVAL_S = 5
# Lost jobs run again within one reconciler interval plus a margin (docs/redis-loss.md).
RECOVERY_BOUND_S = RECONCILE_INTERVAL_S + 30
# Running them all takes longer on a busy machine (two cores shared with other test runs).
DRAIN_BOUND_S = 75
TIMING = {
    "reconcile_interval_s": str(RECONCILE_INTERVAL_S),
    "orphan_grace_s": "2",
    # Not shorter: while a worker reconnects, its loop reads no results, and a time limit that
    # fires then on an attempt that already ended terminates a pool process mid-write.
    "task_soft_time_limit_s": "20",
    "task_time_limit_s": "25",
    "lease_s": "6",
    "lease_heartbeat_s": "2",
    "backoff_base_s": "0.05",
    "backoff_max_s": "0.5",
    "rate_limits__tenant_rpm": "100000",
}


@dataclass
class Load:
    """Clients submitting jobs until told to stop, and what the API answered them."""

    api_url: str
    key: str
    accepted: list[str] = field(default_factory=list)
    answers: list[tuple[float, int, str, str]] = field(default_factory=list)  # at, status, code, Retry-After
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, client_id: int, pause_s: float) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.api_url, headers=headers, timeout=30) as client:
            n = 0
            while not self.stop.is_set():
                n += 1
                messages = [{"role": "user", "content": f"client {client_id}, job {n}"}]
                body = {"tier": TIER, "priority": "batch", "cache": "off", "request": {"messages": messages}}
                response = client.post("/v1/jobs", json=body)
                code = response.json().get("error", {}).get("code", "") if response.status_code >= 400 else ""
                retry_after = response.headers.get("Retry-After", "")
                with self.lock:
                    self.answers.append((time.monotonic(), response.status_code, code, retry_after))
                    if response.status_code == 202:
                        self.accepted.append(response.json()["id"])
                time.sleep(pause_s)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with private_redis(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def stack(tmp_path: Path, redis_server: RedisServer) -> Iterator[tuple[Settings, str, str]]:
    """The stack on the private Redis: (settings, API URL, a tenant's key)."""
    settings = make_test_settings(tmp_path, redis_server.url)
    upgrade(settings)
    api_port, emulator_port = free_port(), free_port()
    env = {
        **os.environ,
        "SWITCHYARD_CONFIG_FILE": str(TEST_CONFIG),
        "SWITCHYARD_VAR_DIR": str(tmp_path),
        "SWITCHYARD_REDIS_URL": redis_server.url,
        "SWITCHYARD_DATABASE_URL": "",
        "SWITCHYARD_KEY_PREFIX": settings.key_prefix,
        "SWITCHYARD_PROVIDERS__EMULATOR__BASE_URL": f"http://127.0.0.1:{emulator_port}/v1",
        **{f"SWITCHYARD_{name.upper()}": value for name, value in TIMING.items()},
    }
    processes = ProcessGroup(log_dir=tmp_path, env=env)
    api_url = f"http://127.0.0.1:{api_port}"
    queues = [f"tier.{TIER}.{priority}" for priority in PRIORITIES]
    try:
        processes.start("emulator", [*emulator_argv(emulator_port), "--latency-ms", str(LATENCY_MS)])
        processes.start("api", api_argv(api_port, log_level="warning"))
        processes.start("worker", worker_argv(queues, 4, "loss-jobs"))
        processes.start(
            "maintenance", worker_argv([RedisKeys(settings.key_prefix).maintenance_queue], 1, "loss-mnt")
        )
        processes.start("beat", celery_argv("beat", "-s", str(tmp_path / "beat-schedule")))
        wait_http(f"http://127.0.0.1:{emulator_port}/emulator/stats", alive=processes.check_alive)
        wait_http(f"{api_url}/readyz", alive=processes.check_alive)
        _, key = new_tenant_key(make_engine(settings), {"submit", "read"})
        wait_steady(settings, api_url, key, redis_server, processes)
        yield settings, api_url, key
    finally:
        for process in processes.running.values():  # all at once: a warm shutdown each takes seconds
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        processes.stop_all()


def wait_steady(
    settings: Settings, api_url: str, key: str, redis_server: RedisServer, processes: ProcessGroup
) -> None:
    """Until a job has run (the job worker is up) and a reconciler pass has written its marker."""
    headers = {"Authorization": f"Bearer {key}"}
    body = {"tier": TIER, "cache": "off", "request": {"messages": [{"role": "user", "content": "ready?"}]}}
    job_id = httpx.post(f"{api_url}/v1/jobs", json=body, headers=headers, timeout=30).json()["id"]
    redis = Redis.from_url(redis_server.url)
    deadline = time.monotonic() + 60
    while job_statuses(settings, [job_id])[job_id] != "succeeded" or not redis.exists(
        RedisKeys(settings.key_prefix).broker_marker
    ):
        processes.check_alive()
        assert time.monotonic() < deadline, "the stack did not settle"
        time.sleep(0.2)
    redis.close()


def repairs(log: Path) -> list[int]:
    """The number of jobs each broker-loss repair in a worker's log published again."""
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [line["republished"] for line in lines if line.get("event") == "broker_loss_repaired"]


def job_rows(settings: Settings, job_ids: list[str]) -> dict[str, tuple[str, datetime | None]]:
    """Each job's status and when its message last went out (``missing`` for a job with no row)."""
    engine = make_engine(settings)
    with engine.connect() as connection:
        query = select(JOBS.c.id, JOBS.c.status, JOBS.c.published_at).where(JOBS.c.id.in_(job_ids))
        found = {job_id: (status, published_at) for job_id, status, published_at in connection.execute(query)}
    engine.dispose()
    return {job_id: found.get(job_id, ("missing", None)) for job_id in job_ids}


def job_statuses(settings: Settings, job_ids: list[str]) -> dict[str, str]:
    return {job_id: status for job_id, (status, _) in job_rows(settings, job_ids).items()}


def stranded(settings: Settings, job_ids: list[str], since: datetime) -> dict[str, str]:
    """The jobs still waiting on a message sent before ``since`` (the restart), or on none."""
    return {
        job_id: status
        for job_id, (status, published_at) in job_rows(settings, job_ids).items()
        if status == "missing" or (status == "queued" and (published_at is None or published_at < since))
    }


def unfinished(settings: Settings, job_ids: list[str]) -> dict[str, str]:
    """The jobs not yet in a final state, with their status."""
    return {
        job: status for job, status in job_statuses(settings, job_ids).items() if status not in FINAL_STATUSES
    }


def wait_until_empty(check: Callable[[], dict[str, str]], deadline: float) -> dict[str, str]:
    """``check()`` once it is empty, or as it is at ``deadline`` (monotonic)."""
    left = check()
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = check()
    return left


def load_through_a_restart(load: Load, redis_server: RedisServer) -> tuple[float, float, datetime]:
    """Clients submit for 4 s, Redis is killed for 3 s, then restarted empty, then 3 s more;
    when it went down and came back (monotonic), and when it came back (wall clock)."""
    clients = [threading.Thread(target=load.run, args=(n, 0.15), daemon=True) for n in range(3)]
    for client in clients:
        client.start()
    time.sleep(4)
    redis_server.kill()
    down_at = time.monotonic()
    time.sleep(3)
    redis_server.start()  # empty, on the same port
    restarted_at, restarted_wall = time.monotonic(), utcnow()
    time.sleep(3)
    load.stop.set()
    for client in clients:
        client.join(timeout=30)
    return down_at, restarted_at, restarted_wall


def check_answers(load: Load, down_at: float, restarted_at: float) -> None:
    """202 or 503 (with its code and a Retry-After), never 500; only 503 while Redis was down."""
    statuses = Counter(status for _, status, _, _ in load.answers)
    during = Counter(status for at, status, _, _ in load.answers if down_at + 0.5 < at < restarted_at)
    after = Counter(status for at, status, _, _ in load.answers if at > restarted_at)
    print(f"answers={dict(statuses)} while_down={dict(during)} after_restart={dict(after)}")
    assert statuses[500] == 0, statuses
    assert set(statuses) <= {202, 503}, statuses
    assert during[503] > 0 and set(during) <= {202, 503}, during
    refused = [(code, retry_after) for _, status, code, retry_after in load.answers if status == 503]
    assert all(code == "service_unavailable" and int(retry_after) >= 1 for code, retry_after in refused)


def test_every_accepted_job_ends_after_redis_restarts_empty_under_load(
    stack: tuple[Settings, str, str], redis_server: RedisServer
) -> None:
    settings, api_url, key = stack
    load = Load(api_url, key)

    down_at, restarted_at, restarted_wall = load_through_a_restart(load, redis_server)

    check_answers(load, down_at, restarted_at)
    # Every job whose message Redis lost has a new one within the bound...
    lost = wait_until_empty(
        lambda: stranded(settings, load.accepted, restarted_wall), restarted_at + RECOVERY_BOUND_S
    )
    print(f"republished_after_restart_s={time.monotonic() - restarted_at:.1f}")
    assert not lost, (
        f"{len(lost)} jobs had no message {RECOVERY_BOUND_S}s after the restart: {Counter(lost.values())}"
    )
    assert max(repairs(settings.var_dir / "maintenance.log")) > 0  # the repair did it, not the hour
    # ...and every accepted job ends, however loaded the machine is.
    left = wait_until_empty(lambda: unfinished(settings, load.accepted), restarted_at + DRAIN_BOUND_S)
    print(f"all_final_after_restart_s={time.monotonic() - restarted_at:.1f}")
    assert not left, (
        f"{len(left)} jobs not final {DRAIN_BOUND_S}s after the restart: {Counter(left.values())}"
    )
    assert set(job_statuses(settings, load.accepted).values()) == {"succeeded"}
