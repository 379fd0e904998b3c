"""The hourly usage rollups: written as calls settle, always equal to the sums of the rows they
roll up, exact under concurrent writers, and rebuilt identically from the rows. On SQLite and
PostgreSQL."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine
from tests_support import new_tenant_key

from schemas.tables import Job, Usage, utcnow
from workers import batch_store, store
from workers.cache.results import CachedResult
from workers.middleware.usage import usage_row
from workers.usage_rebuild import rebuild_rollups
from workers.usage_rollups import FIGURES, ROLLUPS, hour_of

LEASE_S = 180
REQUEST = {"messages": [{"role": "user", "content": "Hello"}]}
USAGE = Usage.__table__  # type: ignore[attr-defined]
NAMES = ("hour", "tier", "model", "provider", "api_key_id", "priority")


@pytest.fixture
def tenant_id(engine: Engine) -> Iterator[str]:
    """A fresh tenant; its rows are removed afterwards (usage before jobs: the foreign key)."""
    tenant, _ = new_tenant_key(engine)
    yield tenant
    with engine.begin() as connection:
        connection.execute(delete(ROLLUPS).where(ROLLUPS.c.tenant_id == tenant))
        connection.execute(delete(USAGE).where(USAGE.c.tenant_id == tenant))
        connection.execute(delete(store.JOBS).where(store.JOBS.c.tenant_id == tenant))


def claimed(engine: Engine, tenant_id: str, **fields: Any) -> Job:
    """A new job, claimed by a worker."""
    with store.session_scope(engine) as session:
        job = store.insert_job(
            session, tenant_id=tenant_id, tier="small", request=REQUEST, job_metadata={}, **fields
        )
    return reclaim(engine, job.id)


def reclaim(engine: Engine, job_id: str) -> Job:
    running = store.claim_job(engine, job_id, LEASE_S)
    assert running is not None
    return running


def a_call(job: Job, model: str = "small-a", cost: float = 0.0125, outcome: str = "ok") -> Usage:
    entry = {
        "attempt": job.attempts,
        "model": model,
        "provider": "emulator",
        "outcome": outcome,
        "latency_ms": 12.0,
        "prompt_tokens": 100,
        "completion_tokens": 40 if outcome == "ok" else 0,
        "cost_usd": cost,
    }
    return usage_row(job.id, job.tenant_id, job.tier, entry)


def rollups(engine: Engine, tenant_id: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(select(ROLLUPS).where(ROLLUPS.c.tenant_id == tenant_id)).mappings().all()
    return {tuple(row[name] for name in NAMES): {name: row[name] for name in FIGURES} for row in rows}


def sums_of_rows(engine: Engine, tenant_id: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The rollups worked out by hand from the usage rows and the ended jobs."""
    sums: dict[tuple[Any, ...], dict[str, Any]] = defaultdict(lambda: dict.fromkeys(FIGURES, 0))
    with engine.connect() as connection:
        jobs = {
            row["id"]: row
            for row in connection.execute(
                select(store.JOBS).where(store.JOBS.c.tenant_id == tenant_id)
            ).mappings()
        }
        calls = connection.execute(select(USAGE).where(USAGE.c.tenant_id == tenant_id)).mappings().all()
    for call in calls:
        job = jobs[call["job_id"]]
        row = sums[
            (
                hour_of(call["created_at"]),
                call["tier"],
                call["model"],
                call["provider"],
                job["api_key_id"] or "",
                job["priority"],
            )
        ]
        row["calls"] += 1
        row["prompt_tokens"] += call["prompt_tokens"]
        row["completion_tokens"] += call["completion_tokens"]
        row["cost_usd"] += call["cost_usd"]
    for job in jobs.values():
        if job["status"] not in ("succeeded", "failed"):
            continue
        key = (
            hour_of(job["finished_at"]),
            job["tier"],
            job["model"] or "",
            job["provider"] or "",
            job["api_key_id"] or "",
            job["priority"],
        )
        hit = (job["cache"] or {}).get("hit")
        sums[key]["jobs"] += 1
        sums[key]["cache_hits"] += int(bool(hit))
        sums[key]["cache_savings_usd"] += (job["cache"] or {}).get("saved_usd", 0.0) if hit else 0.0
    return dict(sums)


def assert_same(
    actual: dict[tuple[Any, ...], dict[str, Any]], expected: dict[tuple[Any, ...], dict[str, Any]]
) -> None:
    assert set(actual) == set(expected)
    for key, figures in expected.items():
        assert actual[key] == pytest.approx(figures), key


def test_a_success_adds_its_call_and_its_job(engine: Engine, tenant_id: str) -> None:
    job = claimed(engine, tenant_id, api_key_id="key_abc", priority="batch")
    call = a_call(job)

    store.finish_job(
        engine, job, call, status="succeeded", model="small-a", provider="emulator", finished_at=utcnow()
    )

    [(key, figures)] = rollups(engine, tenant_id).items()
    assert key[1:] == ("small", "small-a", "emulator", "key_abc", "batch")
    assert figures == pytest.approx(
        {
            "jobs": 1,
            "calls": 1,
            "prompt_tokens": 100,
            "completion_tokens": 40,
            "cost_usd": 0.0125,
            "cache_hits": 0,
            "cache_savings_usd": 0.0,
        }
    )
    assert_same(rollups(engine, tenant_id), sums_of_rows(engine, tenant_id))


def test_retries_and_a_failure_count_every_call_and_the_job_once(engine: Engine, tenant_id: str) -> None:
    job = claimed(engine, tenant_id)
    store.hand_back(
        engine, job, utcnow(), published=False, usage=a_call(job, outcome="rate_limited", cost=0.0)
    )
    job = reclaim(engine, job.id)
    store.hand_back(engine, job, utcnow(), published=False)  # handed back before any call: nothing
    job = reclaim(engine, job.id)
    assert rollups(engine, tenant_id) and sum(f["jobs"] for f in rollups(engine, tenant_id).values()) == 0

    store.fail_job(
        engine, job, "provider_bad_request", "no", usage=a_call(job, "small-b", 0.002, "provider_bad_request")
    )

    figures = rollups(engine, tenant_id)
    assert sum(f["calls"] for f in figures.values()) == 2
    assert sum(f["jobs"] for f in figures.values()) == 1
    assert sum(f["cost_usd"] for f in figures.values()) == pytest.approx(0.002)
    assert_same(figures, sums_of_rows(engine, tenant_id))


def test_a_stale_worker_adds_nothing(engine: Engine, tenant_id: str) -> None:
    job = claimed(engine, tenant_id)
    store.fail_job(engine, job, "provider_bad_request", "no", usage=a_call(job))

    assert store.finish_job(engine, job, a_call(job), status="succeeded", finished_at=utcnow()) is None

    assert sum(f["calls"] for f in rollups(engine, tenant_id).values()) == 1
    assert_same(rollups(engine, tenant_id), sums_of_rows(engine, tenant_id))


def test_lost_workers_calls_count_when_the_reconciler_ends_or_requeues(
    engine: Engine, tenant_id: str
) -> None:
    job = claimed(engine, tenant_id)
    past = utcnow() - timedelta(seconds=1)
    with engine.begin() as connection:
        connection.execute(update(store.JOBS).where(store.JOBS.c.id == job.id).values(lease_expires_at=past))
    assert store.requeue_expired(engine, job.id, job.lease_token, a_call(job, cost=0.5))
    job = reclaim(engine, job.id)
    with engine.begin() as connection:
        connection.execute(update(store.JOBS).where(store.JOBS.c.id == job.id).values(lease_expires_at=past))

    assert store.fail_expired(engine, job.id, job.lease_token, a_call(job, cost=0.25), "max_attempts", "lost")

    figures = rollups(engine, tenant_id)
    assert sum(f["calls"] for f in figures.values()) == 2
    assert sum(f["jobs"] for f in figures.values()) == 1
    assert_same(figures, sums_of_rows(engine, tenant_id))


def test_cache_hits_count_the_cost_they_saved(engine: Engine, tenant_id: str) -> None:
    hit = CachedResult(
        source_job="job_src", result={"id": "x"}, model="small-a", provider="emulator", cost_usd=0.04
    )
    cache = {"mode": "semantic", "ttl_s": 60, "key": "k", "hit": None}
    with store.session_scope(engine) as session:  # the API's exact-cache fast path
        store.insert_job(
            session,
            tenant_id=tenant_id,
            tier="small",
            request=REQUEST,
            job_metadata={},
            **hit.as_job_fields(cache),
        )
    row = {
        "id": "job_batchhit",
        "tenant_id": tenant_id,
        "tier": "small",
        "request": REQUEST,
        "metadata": {},
        "attempt_log": [],
        "created_at": utcnow(),
        "updated_at": utcnow(),
        "priority": "batch",
    }
    with engine.begin() as connection:  # a batch line the exact cache answered
        batch_store.insert_jobs(
            connection, [{**row, **{store.COLUMNS[k]: v for k, v in hit.as_job_fields(cache).items()}}]
        )
    job = claimed(engine, tenant_id, cache_mode="semantic", cache=cache)  # a semantic hit in the worker
    semantic = CachedResult.from_entry(hit.to_entry() | {"cost_usd": 0.01}, "semantic", 0.93)
    store.finish_job(engine, job, None, **semantic.as_job_fields(cache), attempts=job.attempts - 1)

    figures = rollups(engine, tenant_id)
    assert sum(f["cache_hits"] for f in figures.values()) == 3
    assert sum(f["jobs"] for f in figures.values()) == 3
    assert sum(f["calls"] for f in figures.values()) == 0
    assert sum(f["cache_savings_usd"] for f in figures.values()) == pytest.approx(0.09)
    assert_same(figures, sums_of_rows(engine, tenant_id))


def test_concurrent_settlements_into_one_rollup_row_stay_exact(engine: Engine, tenant_id: str) -> None:
    jobs = [claimed(engine, tenant_id) for _ in range(48)]
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def settle(share: list[Any]) -> None:
        barrier.wait()
        try:
            for job in share:
                store.finish_job(
                    engine,
                    job,
                    a_call(job, cost=0.001),
                    status="succeeded",
                    model="small-a",
                    provider="emulator",
                    finished_at=utcnow(),
                )
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=settle, args=(jobs[i::6],)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    figures = rollups(engine, tenant_id)
    assert sum(f["calls"] for f in figures.values()) == 48
    assert sum(f["jobs"] for f in figures.values()) == 48
    assert sum(f["prompt_tokens"] for f in figures.values()) == 4800
    assert_same(figures, sums_of_rows(engine, tenant_id))


def test_the_rebuild_gives_the_rollups_back_and_is_idempotent(engine: Engine, tenant_id: str) -> None:
    for cost in (0.1, 0.2, 0.3):
        job = claimed(engine, tenant_id, api_key_id="key_x")
        store.finish_job(
            engine,
            job,
            a_call(job, cost=cost),
            status="succeeded",
            model="small-a",
            provider="emulator",
            finished_at=utcnow(),
        )
    failed = claimed(engine, tenant_id)
    store.fail_job(engine, failed, "provider_bad_request", "no", usage=a_call(failed, "small-b"))
    written = rollups(engine, tenant_id)
    with engine.begin() as connection:  # rows written before the rollups existed
        connection.execute(delete(ROLLUPS).where(ROLLUPS.c.tenant_id == tenant_id))

    # Three rows: the successes; the failed call (small-b); the failed job (no model).
    assert rebuild_rollups(engine, tenant_id=tenant_id) == len(written) == 3
    assert_same(rollups(engine, tenant_id), written)
    rebuild_rollups(engine)
    assert_same(rollups(engine, tenant_id), written)
    rebuild_rollups(engine, tenant_id=tenant_id)
    assert_same(rollups(engine, tenant_id), written)


def test_a_rebuild_of_a_range_leaves_other_hours_alone(engine: Engine, tenant_id: str) -> None:
    job = claimed(engine, tenant_id)
    store.finish_job(
        engine,
        job,
        a_call(job),
        status="succeeded",
        model="small-a",
        provider="emulator",
        finished_at=utcnow(),
    )
    before = rollups(engine, tenant_id)
    hour = hour_of(utcnow())
    with engine.begin() as connection:  # a stale figure in an hour outside the range
        connection.execute(
            update(ROLLUPS).where(ROLLUPS.c.tenant_id == tenant_id).values(calls=ROLLUPS.c.calls + 5)
        )

    rebuild_rollups(engine, hour - timedelta(days=2), hour - timedelta(days=1), tenant_id)
    assert sum(f["calls"] for f in rollups(engine, tenant_id).values()) == 6
    rebuild_rollups(engine, hour, hour + timedelta(hours=1), tenant_id)
    assert_same(rollups(engine, tenant_id), before)
