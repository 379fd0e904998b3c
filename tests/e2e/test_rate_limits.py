"""End to end: four real worker processes share the emulator's limits through Redis.

The stack runs 2 s rate-limit windows (see e2e_stack). emu-rl and emu-rl-backup allow 10
requests and 4,000 tokens per window each, in Switchyard's config and at the emulator.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pytest
from e2e_stack import Stack
from sqlmodel import Session

from api.keys import create_key, create_tenant
from workers.db import make_engine

LIMITED, LANES = "limited", "lanes"
EMULATOR_LIMITS = {"rpm": 10, "tpm": 4000, "window_s": 2.0, "latency_ms": 100.0}
CLEARED = {"rpm": None, "tpm": None, "window_s": None, "latency_ms": None}


@pytest.fixture(scope="module")
def workers(stack: Stack) -> Iterator[Stack]:
    """Four single-process workers for the limited and lanes tiers, warmed up."""
    with stack.warm_workers("worker-rl", 4, [LIMITED, LANES], warm_tier=LANES):
        yield stack


@pytest.fixture
def limited(workers: Stack) -> Iterator[Stack]:
    """The emulator enforcing the same limits as the config, with fresh windows and counters."""
    workers.emulator("POST", "/emulator/reset")
    workers.emulator("POST", "/emulator/config", json=EMULATOR_LIMITS)
    time.sleep(2.2)  # let Switchyard's windows of earlier tests run out too
    yield workers
    workers.emulator("POST", "/emulator/config", json=CLEARED)
    workers.emulator("POST", "/emulator/reset")


def submit_many(stack: Stack, count: int, tier: str, key: str | None = None, **fields: Any) -> list[str]:
    def one(index: int) -> str:
        body = {
            "tier": tier,
            "request": {"messages": [{"role": "user", "content": f"Item {index}"}]},
            "cache": "off",  # the same items run in several tests, and each must call the provider
            **fields,
        }
        response = stack.post("/v1/jobs", key or stack.keys["a"], json=body)
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def wait_all(stack: Stack, job_ids: list[str], key: str | None = None) -> list[dict[str, Any]]:
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda job_id: stack.wait_final(job_id, key, timeout=90), job_ids))


def seconds_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def test_four_workers_share_the_limits_with_almost_no_429s(limited: Stack) -> None:
    started = time.monotonic()
    jobs = wait_all(limited, submit_many(limited, 80, LIMITED))
    elapsed = time.monotonic() - started

    assert [job["status"] for job in jobs] == ["succeeded"] * 80
    stats = limited.emulator("GET", "/emulator/stats")
    rejected = stats["by_status"].get("429", 0)
    assert rejected <= 0.01 * stats["requests"], stats
    # Both models of the chain served: a job moves on when its first model is exhausted.
    assert {job["model"] for job in jobs} == {"emu-rl", "emu-rl-backup"}
    # 20 calls per 2 s window at most across the two models: 80 jobs need at least 3 windows.
    assert elapsed >= 6.0
    # Handing back for capacity does not use up attempts.
    assert max(job["attempts"] for job in jobs) == 1


def test_a_429_with_retry_after_pauses_every_worker_then_they_resume(limited: Stack) -> None:
    limited.emulator(
        "POST", "/emulator/faults", json={"responses": [429], "mode": "always", "retry_after_s": 2}
    )
    job_ids = submit_many(limited, 12, LIMITED)
    time.sleep(1.0)
    limited.emulator("DELETE", "/emulator/faults")  # the provider recovers within the pause

    jobs = wait_all(limited, job_ids)

    assert [job["status"] for job in jobs] == ["succeeded"] * 12
    stats = limited.emulator("GET", "/emulator/stats")
    # Each model answered 429 to the calls already under way when it first did, at most one
    # per worker; after that no worker called it until the pause was over.
    assert 1 <= stats["by_status"].get("429", 0) <= 8, stats
    assert max(job["attempts"] for job in jobs) <= 2


def test_a_live_job_overtakes_a_backlog_of_500_batch_jobs(workers: Stack) -> None:
    workers.emulator("POST", "/emulator/faults", json={"model": "emu-lanes", "latency_ms": 200})
    backlog = submit_many(workers, 500, LANES, priority="batch")
    try:
        live = workers.submit(LANES, "Urgent: the customer is waiting.")
        [other_tenant] = submit_many(workers, 1, LANES, key=workers.keys["b"], priority="batch")
        live_done = workers.wait_final(live["id"])
        other_done = workers.wait_final(other_tenant, key=workers.keys["b"])
    finally:
        cancel_queued(workers, backlog)

    # One call (200 ms) for a worker to come free, plus a margin for this busy 2-core machine.
    assert seconds_between(live_done["created_at"], live_done["started_at"]) < 0.2 + 0.6
    # The other tenant's job is not stuck behind tenant a's backlog either (fair lanes).
    assert seconds_between(other_done["created_at"], other_done["started_at"]) < 2 * 0.2 + 0.6
    assert live_done["status"] == other_done["status"] == "succeeded"


def cancel_queued(stack: Stack, job_ids: list[str]) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda job_id: stack.post(f"/v1/jobs/{job_id}/cancel", stack.keys["a"]), job_ids))


def test_a_tenant_at_its_running_cap_runs_one_job_at_a_time(workers: Stack) -> None:
    engine = make_engine(workers.settings)
    with Session(engine) as session:
        tenant = create_tenant(session, f"capped-{uuid.uuid4().hex[:6]}", max_running_jobs=1)
        session.flush()
        key = create_key(session, tenant.id, {"submit", "read"})
        session.commit()
    engine.dispose()
    workers.emulator("POST", "/emulator/faults", json={"model": "emu-lanes", "latency_ms": 300})

    started = time.monotonic()
    jobs = wait_all(workers, submit_many(workers, 4, LANES, key=key), key=key)
    elapsed = time.monotonic() - started

    assert [job["status"] for job in jobs] == ["succeeded"] * 4
    assert [job["attempts"] for job in jobs] == [1] * 4  # waiting for the cap is not an attempt
    # Four free workers would finish the four 300 ms calls together; one at a time takes 1.2 s+.
    assert elapsed >= 4 * 0.3
