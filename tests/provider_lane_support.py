"""Fixtures and helpers of the provider Batch API lane tests: a served emulator whose batches
complete at once, a runtime per test on SQLite or a fresh PostgreSQL database, jobs to park,
and lane passes driven as beat drives them."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, col, select
from tests_support import (
    delete_tier_queues,
    fresh_postgres_database,
    make_test_settings,
    new_tenant_key,
)

from infra.launch import free_port, wait_http
from schemas.tables import Job, ProviderBatch
from workers import store
from workers.celery_app import create_celery
from workers.db import session_scope
from workers.job_runner import run_job
from workers.migrate import upgrade
from workers.provider_batches.lane import LanePass, run_pass
from workers.runtime import Runtime

ROOT = Path(__file__).resolve().parents[1]
TIER = "provider_lane"
LIVE_PRICES = (1.0, 2.0)  # emu-lane in tests/switchyard-test.toml
BATCH_PRICES = (0.5, 1.0)


@pytest.fixture(scope="module")
def emulator_url() -> Iterator[str]:
    """A served emulator whose batches complete at once."""
    port = free_port()
    command = [sys.executable, "-m", "infra.emulator", "--port", str(port), "--batch-delay-s", "0"]
    process = subprocess.Popen(command, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/emulator/stats")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database per test: a pass must see only this test's batches."""
    with fresh_postgres_database("switchyard_lane") as url:
        yield url


def make_runtime(tmp_path: Path, redis_url: str, database_url: str, base_url: str, **lane: Any) -> Runtime:
    settings = make_test_settings(
        tmp_path,
        redis_url,
        database_url,
        providers={"emulator_batch": {"base_url": f"{base_url}/v1"}},
        provider_batches={"max_wait_s": 0.01, "resend_after_s": 0.2, **lane},
        backoff_base_s=0.01,
    )
    upgrade(settings)
    return Runtime(settings=settings, celery=create_celery(settings))


@pytest.fixture
def rt(tmp_path: Path, redis_url: str, database_url: str, emulator_url: str) -> Iterator[Runtime]:
    httpx.post(f"{emulator_url}/emulator/reset")
    runtime = make_runtime(tmp_path, redis_url, database_url, emulator_url)
    yield runtime
    delete_tier_queues(runtime.redis, [TIER], runtime.settings.key_prefix)
    runtime.engine.dispose()


def add_jobs(rt: Runtime, count: int, **fields: Any) -> list[str]:
    tenant_id, _ = new_tenant_key(rt.engine)
    values = {"priority": "batch", "completion_window": "24h", **fields}
    with session_scope(rt.engine) as session:
        return [
            store.insert_job(
                session,
                tenant_id=tenant_id,
                tier=TIER,
                request={"messages": [{"role": "user", "content": f"Summarise document {n}"}]},
                job_metadata={},
                **values,
            ).id
            for n in range(count)
        ]


def claim_all(rt: Runtime, job_ids: list[str]) -> None:
    for job_id in job_ids:
        run_job(rt, job_id)


def jobs(rt: Runtime, job_ids: list[str]) -> list[Job]:
    with Session(rt.engine) as session:
        found = {job.id: job for job in session.exec(select(Job).where(col(Job.id).in_(job_ids)))}
    return [found[job_id] for job_id in job_ids]


def batches(rt: Runtime) -> list[ProviderBatch]:
    with Session(rt.engine) as session:
        return list(session.exec(select(ProviderBatch).order_by(col(ProviderBatch.created_at))))


def emulator_batches(url: str) -> dict[str, Any]:
    return dict(httpx.get(f"{url}/emulator/batches").json())


def drive(rt: Runtime, merges: int = 1) -> LanePass:
    """Run lane passes, as beat does, until ``merges`` batches were merged; the totals."""
    total, deadline = LanePass(), time.monotonic() + 15
    while total.merged < merges and time.monotonic() < deadline:
        one = run_pass(rt)
        total.sent, total.merged = total.sent + one.sent, total.merged + one.merged
        time.sleep(0.02)
    assert total.merged == merges
    return total


def cost(job: Job, prices: tuple[float, float]) -> float:
    return (job.prompt_tokens * prices[0] + job.completion_tokens * prices[1]) / 1e6
