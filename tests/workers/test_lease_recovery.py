"""A dead worker's job: its lost attempt is recorded and priced, then it runs again or fails."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import Session, col, select
from tests_support import new_tenant_key, queued_job_ids, tier_runtime

from schemas.tables import Job, Usage, utcnow
from workers import store
from workers.db import session_scope
from workers.lease_recovery import expired_leases
from workers.reconciler import reconcile
from workers.runtime import Runtime

# "Hello" is estimated at 9 prompt tokens: 3 for the reply's priming, 4 for the message and
# 2 for its 5 bytes (workers/ratelimit/tokens.py). emu-a costs $0.5 / $1.5 per million tokens.
REQUEST = {"messages": [{"role": "user", "content": "Hello"}]}
PROMPT_ESTIMATE = 9
DEFAULT_MAX_TOKENS = 256  # the tier's default_max_tokens


def price(prompt: int, completion: int) -> float:
    return round((prompt * 0.5 + completion * 1.5) / 1_000_000, 8)


@pytest.fixture
def tier() -> str:
    return f"lost{uuid.uuid4().hex[:8]}"


@pytest.fixture
def runtime(tmp_path: Path, redis_url: str, database_url: str, tier: str) -> Iterator[Runtime]:
    with tier_runtime(tmp_path, redis_url, database_url, tier, ["emu-a", "emu-b"]) as rt:
        yield rt


def dead_workers_job(rt: Runtime, tier: str, request: dict[str, Any] = REQUEST, **columns: Any) -> str:
    """A job claimed by a worker that then died: running, its lease run out a second ago."""
    tenant_id, _ = new_tenant_key(rt.engine)
    with session_scope(rt.engine) as session:
        job_id = store.insert_job(
            session, tenant_id=tenant_id, tier=tier, request=request, job_metadata={}
        ).id
    assert store.claim_job(rt.engine, job_id, rt.settings.lease_s) is not None
    started = utcnow() - timedelta(seconds=rt.settings.lease_s + 4)
    with session_scope(rt.engine) as session:
        session.execute(
            update(Job)
            .where(col(Job.id) == job_id)
            .values(started_at=started, lease_expires_at=utcnow() - timedelta(seconds=1), **columns)
        )
    return job_id


def read(rt: Runtime, job_id: str) -> Job:
    job = store.load_job(rt.engine, job_id)
    assert job is not None
    return job


def usage_rows(rt: Runtime, job_id: str) -> list[Usage]:
    with Session(rt.engine) as session:
        return list(session.exec(select(Usage).where(col(Usage.job_id) == job_id)).all())


def test_the_lost_attempt_is_logged_and_priced_at_its_maximum_then_the_job_runs_again(
    runtime: Runtime, tier: str
) -> None:
    job_id = dead_workers_job(runtime, tier)

    report = reconcile(runtime)

    assert (report.requeued, report.dead_lettered) == (1, 0)
    job = read(runtime, job_id)
    assert (job.status, job.attempts, job.lease_token) == ("queued", 1, None)
    assert queued_job_ids(runtime.redis, f"tier.{tier}.live") == [job_id]
    cost = price(PROMPT_ESTIMATE, DEFAULT_MAX_TOKENS)
    (entry,) = job.attempt_log
    assert entry == {
        "attempt": 1,
        "model": "emu-a",
        "provider": "emulator",
        "outcome": "worker_lost",
        "latency_ms": pytest.approx(3000, abs=1500),  # from the claim to the last renewal
        "prompt_tokens": PROMPT_ESTIMATE,
        "completion_tokens": DEFAULT_MAX_TOKENS,
        "cost_usd": cost,
        "estimated": True,
    }
    assert job.cost_usd == pytest.approx(cost)
    (usage,) = usage_rows(runtime, job_id)
    assert (usage.outcome, usage.attempt, usage.model, usage.provider) == (
        "worker_lost",
        1,
        "emu-a",
        "emulator",
    )
    assert (usage.prompt_tokens, usage.completion_tokens) == (PROMPT_ESTIMATE, DEFAULT_MAX_TOKENS)
    assert usage.cost_usd == pytest.approx(cost)


def test_the_lost_call_is_priced_at_the_requests_own_max_tokens_and_routed_model(
    runtime: Runtime, tier: str
) -> None:
    request = {**REQUEST, "model": "emu-b", "max_tokens": 40}
    job_id = dead_workers_job(runtime, tier, request, cost_usd=0.25)

    reconcile(runtime)

    (entry,) = read(runtime, job_id).attempt_log
    assert (entry["model"], entry["completion_tokens"]) == ("emu-b", 40)
    emu_b = runtime.settings.models["emu-b"]
    expected = round((PROMPT_ESTIMATE * emu_b.input_usd_per_mtok + 40 * emu_b.output_usd_per_mtok) / 1e6, 8)
    assert entry["cost_usd"] == expected
    assert read(runtime, job_id).cost_usd == pytest.approx(0.25 + expected)  # added to what it cost before


def test_a_job_out_of_attempts_fails_with_its_lost_attempt_recorded(runtime: Runtime, tier: str) -> None:
    job_id = dead_workers_job(runtime, tier, attempts=runtime.settings.max_attempts)

    report = reconcile(runtime)

    assert (report.requeued, report.dead_lettered) == (0, 1)
    job = read(runtime, job_id)
    assert (job.status, job.error_code) == ("failed", "max_attempts")
    assert [entry["outcome"] for entry in job.attempt_log] == ["worker_lost"]
    assert [row.outcome for row in usage_rows(runtime, job_id)] == ["worker_lost"]


def test_a_lease_renewed_since_the_pass_read_it_keeps_its_job_and_writes_no_usage(
    runtime: Runtime, tier: str
) -> None:
    # The worker was only slow: its heartbeat renewed the lease between the read and the update.
    job_id = dead_workers_job(runtime, tier)
    (row,) = [row for row in expired_leases(runtime) if row["id"] == job_id]
    store.renew_leases(runtime.engine, [job_id], runtime.settings.lease_s)

    assert not store.requeue_expired(runtime.engine, job_id, row["lease_token"], usage=None)
    assert read(runtime, job_id).status == "running"
    assert reconcile(runtime).requeued == 0
    assert usage_rows(runtime, job_id) == []


def test_a_job_whose_provider_batch_lease_expired_returns_without_a_lost_attempt(
    runtime: Runtime, tier: str
) -> None:
    # No worker held it: it waited in a provider batch, whose own lane settles what it cost.
    job_id = dead_workers_job(runtime, tier)
    with session_scope(runtime.engine) as session:
        session.execute(
            update(Job).where(col(Job.id) == job_id).values(lease_token="pb_1", provider_batch_id="pb_1")
        )

    assert reconcile(runtime).requeued == 1

    job = read(runtime, job_id)
    assert (job.status, job.attempt_log, job.cost_usd) == ("queued", [], 0.0)
    assert usage_rows(runtime, job_id) == []


def test_a_stored_request_that_no_longer_parses_still_gets_its_job_back(runtime: Runtime, tier: str) -> None:
    # The pass must never stop at one row: it records the attempt unpriced and moves on.
    job_id = dead_workers_job(runtime, tier, {"messages": "not a list"})

    assert reconcile(runtime).requeued == 1

    (entry,) = read(runtime, job_id).attempt_log
    assert (entry["outcome"], entry["model"], entry["cost_usd"]) == ("worker_lost", "unknown", 0.0)
    assert [row.outcome for row in usage_rows(runtime, job_id)] == ["worker_lost"]
