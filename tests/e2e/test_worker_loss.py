"""A worker killed with SIGKILL: its jobs run again within about 30 s, its lost attempts recorded.

Real processes (emulator, API, beat, two workers) with the production lease timings: lease 20 s,
heartbeat 5 s, reconciler every 10 s (docs/operations.md). The killed worker's calls, and the
first on the surviving worker, take longer than a lease, so the test also shows that a live
worker keeps its jobs: its lease is renewed, and none of them runs twice.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from e2e_stack import Stack
from redis import Redis
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from tests_support import TEST_CONFIG, make_test_settings, new_tenant_key

from infra.launch import ProcessGroup, api_argv, celery_argv, emulator_argv, free_port, wait_http, worker_argv
from schemas.tables import Job, Usage
from workers.db import make_engine
from workers.keys import RedisKeys, tier_queues
from workers.migrate import upgrade

TIER, MODEL = "long", "emu-long"
LONG_CALL_MS = 26_000  # longer than a lease: only the heartbeat keeps such a job on its worker
LOST, STILL_QUEUED = 3, 2  # jobs on the killed worker's three processes, and jobs not started yet
# The bound on a re-run: the lease runs out at most lease_s after the last beat, the reconciler
# passes within reconcile_interval_s, plus a margin for a loaded two-core machine.
MARGIN_S = 10


@pytest.fixture(scope="module")
def loss_stack(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Stack]:
    """Emulator, API and beat with the default lease timings; the test starts the workers."""
    var_dir = tmp_path_factory.mktemp("worker_loss")
    api_port, emulator_port = free_port(), free_port()
    emulator_url = f"http://127.0.0.1:{emulator_port}"
    settings = make_test_settings(var_dir, redis_url)
    env = {
        **os.environ,
        "SWITCHYARD_CONFIG_FILE": str(TEST_CONFIG),
        "SWITCHYARD_VAR_DIR": str(var_dir),
        "SWITCHYARD_REDIS_URL": redis_url,
        "SWITCHYARD_DATABASE_URL": "",
        "SWITCHYARD_KEY_PREFIX": settings.key_prefix,
        "SWITCHYARD_PROVIDERS__EMULATOR__BASE_URL": f"{emulator_url}/v1",
        "SWITCHYARD_PROVIDERS__EMULATOR__TIMEOUT_S": "60",  # the test config's 5 s is below a call
    }
    upgrade(settings)
    processes = ProcessGroup(log_dir=var_dir, env=env)
    stack = Stack(settings, f"http://127.0.0.1:{api_port}", emulator_url, processes)
    engine = make_engine(settings)
    stack.keys = {"a": new_tenant_key(engine)[1]}
    engine.dispose()
    try:
        processes.start("emulator", emulator_argv(emulator_port))
        processes.start("api", api_argv(api_port, log_level="warning"))
        processes.start("beat", celery_argv("beat", "-s", str(var_dir / "beat-schedule")))
        wait_http(f"{emulator_url}/emulator/stats", alive=processes.check_alive)
        wait_http(f"{stack.api_url}/readyz", alive=processes.check_alive)
        yield stack
    finally:
        processes.stop_all()
        redis = Redis.from_url(redis_url)
        for key in redis.scan_iter(f"*{settings.key_prefix}*"):
            redis.delete(key)


def start_worker(stack: Stack, name: str, concurrency: int) -> None:
    """A prefork worker for the tier and the maintenance queue, as the Procfile's tier workers."""
    queues = tier_queues(TIER)
    queues.append(RedisKeys(stack.settings.key_prefix).maintenance_queue)
    stack.processes.start(name, worker_argv(queues, concurrency, name))


def wait_for_calls(stack: Stack, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while stack.emulator("GET", "/emulator/stats").get("by_model", {}).get(MODEL, 0) < count:
        stack.processes.check_alive()
        assert time.monotonic() < deadline, f"the provider never saw {count} calls"
        time.sleep(0.1)


def set_latency(stack: Stack, latency_ms: int) -> None:
    stack.emulator(
        "POST", "/emulator/faults", json={"model": MODEL, "latency_ms": latency_ms, "responses": []}
    )


def rows(engine: Engine, job_ids: list[str]) -> dict[str, Job]:
    with Session(engine) as session:
        return {job.id: job for job in session.exec(select(Job).where(col(Job.id).in_(job_ids)))}


def usage_outcomes(engine: Engine, job_id: str) -> list[str]:
    with Session(engine) as session:
        usage = session.exec(select(Usage).where(col(Usage.job_id) == job_id).order_by(col(Usage.attempt)))
        return [row.outcome for row in usage]


def assert_a_lease_outlives_its_first_term(
    stack: Stack, engine: Engine, job_ids: list[str], lost: list[str]
) -> None:
    """Wait for a job to run on the live worker longer than a lease: its lease must be renewed."""
    lease_s, deadline = stack.settings.lease_s, time.monotonic() + 80
    while time.monotonic() < deadline:
        now = datetime.now(UTC)
        for job in rows(engine, job_ids).values():
            dead_attempt = job.id in lost and job.attempts == 1  # still on the killed worker
            if job.status != "running" or dead_attempt or job.started_at is None:
                continue
            if job.started_at < now - timedelta(seconds=lease_s + 1):
                assert job.lease_expires_at is not None and job.lease_expires_at > now, "lease not renewed"
                return
        time.sleep(0.2)
    raise AssertionError("no job ran longer than a lease on the surviving worker")


def test_a_killed_workers_jobs_run_again_within_about_30_s_with_the_lost_attempt_recorded(
    loss_stack: Stack,
) -> None:
    stack, settings = loss_stack, loss_stack.settings
    engine = make_engine(settings)
    set_latency(stack, LONG_CALL_MS)
    job_ids = [stack.submit(TIER, f"survive a kill {n}")["id"] for n in range(LOST + STILL_QUEUED)]
    start_worker(stack, "worker-doomed", LOST)
    wait_for_calls(stack, LOST)

    stack.kill("worker-doomed")  # SIGKILL to the main process and its pool, mid-call
    killed_at = time.time()
    lost = [job.id for job in rows(engine, job_ids).values() if job.status == "running"]
    assert len(lost) == LOST
    start_worker(stack, "worker-survivor", LOST + STILL_QUEUED)
    wait_for_calls(stack, LOST + 1, timeout=60)  # one long call on the survivor is enough
    set_latency(stack, 300)  # the rest, re-runs included, may be quick
    assert_a_lease_outlives_its_first_term(stack, engine, job_ids, lost)

    finals = [stack.wait_final(job_id, timeout=70) for job_id in job_ids]

    assert [job["status"] for job in finals] == ["succeeded"] * len(job_ids), finals
    by_id: dict[str, dict[str, Any]] = {job["id"]: job for job in finals}
    stored = rows(engine, job_ids)
    bound_s = settings.lease_s + settings.reconcile_interval_s + MARGIN_S
    for job_id in lost:
        job = by_id[job_id]
        assert job["attempts"] == 2, job["attempt_log"]
        first, second = job["attempt_log"]
        assert (first["outcome"], first["estimated"], second["outcome"]) == ("worker_lost", True, "ok")
        assert first["cost_usd"] > 0 and first["model"] == MODEL
        assert usage_outcomes(engine, job_id) == ["worker_lost", "ok"]
        started_again = stored[job_id].started_at
        assert started_again is not None
        rerun_after_s = started_again.timestamp() - killed_at
        assert 0 < rerun_after_s <= bound_s, f"re-run {rerun_after_s:.1f}s after the kill"
    for job_id in set(job_ids) - set(lost):  # ran on the live worker, once, even past a lease
        assert by_id[job_id]["attempts"] == 1, by_id[job_id]["attempt_log"]
        assert usage_outcomes(engine, job_id) == ["ok"]
    stack.emulator("DELETE", "/emulator/faults")
    engine.dispose()
