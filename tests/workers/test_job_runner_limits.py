"""A job that meets no capacity goes back to wait without using an attempt (real Redis and DB)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import update
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select
from tests_support import (
    completion_body,
    queued_job_ids,
    tier_runtime,
)

from api.keys import create_tenant
from schemas.openai import ChatCompletion
from schemas.tables import Job, Usage, utcnow
from workers import job_runner, store
from workers.db import session_scope
from workers.job_runner import run_job
from workers.keys import tier_queue
from workers.providers.base import ProviderResponse
from workers.ratelimit.limiter import BucketLimits
from workers.ratelimit.policy import tenant_running_bucket
from workers.runtime import Runtime

REQUEST = {"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 8}


@pytest.fixture
def runtime(tmp_path: Path, redis_url: str, database_url: str) -> Iterator[Runtime]:
    with tier_runtime(tmp_path, redis_url, database_url, f"runner{uuid.uuid4().hex[:8]}", ["emu-rl"]) as rt:
        yield rt


def add_job(rt: Runtime, max_running_jobs: int | None = None) -> Job:
    tier = next(name for name in rt.settings.tiers if name.startswith("runner"))
    with session_scope(rt.engine) as session:
        tenant = create_tenant(session, f"t-{uuid.uuid4().hex[:8]}", max_running_jobs=max_running_jobs)
        session.flush()
        return store.insert_job(session, tenant_id=tenant.id, tier=tier, request=REQUEST, job_metadata={})


def reload(rt: Runtime, job_id: str) -> Job:
    job = store.load_job(rt.engine, job_id)
    assert job is not None
    return job


def test_a_paused_model_hands_the_job_back_for_the_pause_without_an_attempt(runtime: Runtime) -> None:
    job = add_job(runtime)
    model = runtime.settings.models["emu-rl"]
    runtime.limiter.pause(model.bucket, 10)

    run_job(runtime, job.id)

    after = reload(runtime, job.id)
    assert (after.status, after.attempts, after.attempt_log) == ("queued", 0, [])
    assert after.not_before is not None
    assert timedelta(seconds=9) < after.not_before - utcnow() <= timedelta(seconds=11.5)
    # 10 s is a short wait: the job is deferred in Redis, published when due.
    assert deferred_ids(runtime) == [job.id] and after.published_at is not None
    with Session(runtime.engine) as session:
        assert session.exec(select(Usage).where(col(Usage.job_id) == job.id)).all() == []


def test_a_job_of_a_tenant_at_its_running_cap_waits_its_turn(runtime: Runtime) -> None:
    job = add_job(runtime, max_running_jobs=1)
    runtime.limiter.acquire(tenant_running_bucket(job.tenant_id), BucketLimits(60, concurrency=1), 0)

    run_job(runtime, job.id)

    after = reload(runtime, job.id)
    assert (after.status, after.attempts) == ("queued", 0)
    assert deferred_ids(runtime) == [job.id]


def test_claiming_a_job_takes_it_off_its_tenants_backlog(runtime: Runtime) -> None:
    job = add_job(runtime)
    runtime.dispatcher.publish(job.id, job.tier, job.priority, job.tenant_id)
    key = runtime.keys.tenant_backlog(job.tier)
    assert int(runtime.redis.hget(key, job.tenant_id) or 0) == 1
    runtime.limiter.pause(runtime.settings.models["emu-rl"].bucket, 10)  # handed back, deferred

    run_job(runtime, job.id)

    assert int(runtime.redis.hget(key, job.tenant_id) or 0) == 0  # taken off its backlog
    [entry] = deferred_entries(runtime)
    runtime.redis.zadd(runtime.keys.deferred, {entry: 0})  # make it due now
    assert runtime.dispatcher.release_due() == 1  # published again when due: back on it
    assert int(runtime.redis.hget(key, job.tenant_id) or 0) == 1
    assert queued_job_ids(runtime.redis, tier_queue(job.tier, "live")) == [job.id, job.id]


def test_a_long_wait_stays_on_the_row_for_the_reconciler(runtime: Runtime) -> None:
    job = add_job(runtime)
    runtime.limiter.pause(runtime.settings.models["emu-rl"].bucket, 60)  # over max_short_wait_s

    run_job(runtime, job.id)

    after = reload(runtime, job.id)
    assert (after.status, after.attempts, after.published_at) == ("queued", 0, None)
    assert deferred_ids(runtime) == []


COMPLETION = completion_body("emu-rl", "Hi", prompt_tokens=3, completion_tokens=1)


def answered(ctx: object) -> ProviderResponse[ChatCompletion]:
    return ProviderResponse(completion=ChatCompletion.model_validate(COMPLETION))


def in_flight(rt: Runtime, tenant_id: str) -> int:
    state = rt.limiter.snapshot(tenant_running_bucket(tenant_id), BucketLimits(60, concurrency=10))
    return state.in_flight


def test_a_finished_job_gives_its_running_slot_back_when_it_is_announced(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = add_job(runtime, max_running_jobs=5)
    monkeypatch.setattr(job_runner, "_call_provider", lambda rt, ctx: answered(ctx))
    released_with_the_event: list[bool] = []
    announce = runtime.outcomes.announce_job

    def watch(final: Job, along: Any = None) -> None:
        released_with_the_event.append(along is not None)
        announce(final, along)

    monkeypatch.setattr(runtime.outcomes, "announce_job", watch)

    run_job(runtime, job.id)

    assert reload(runtime, job.id).status == "succeeded"
    assert released_with_the_event == [True] and in_flight(runtime, job.tenant_id) == 0
    entries: Any = runtime.redis.xrange(runtime.keys.tenant_events(job.tenant_id))
    [(_id, fields)] = entries
    assert fields[b"type"] == b"job.succeeded"  # the event went out in the same MULTI


def test_the_running_slot_is_given_back_when_settling_fails(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = add_job(runtime, max_running_jobs=5)
    monkeypatch.setattr(job_runner, "_call_provider", lambda rt, ctx: answered(ctx))

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("UPDATE jobs", {}, Exception("database is locked"))

    monkeypatch.setattr(store, "finish_job", broken)

    with pytest.raises(OperationalError):
        run_job(runtime, job.id)

    assert reload(runtime, job.id).status == "running"  # left to its lease and the reconciler
    assert in_flight(runtime, job.tenant_id) == 0


def test_the_running_slot_is_given_back_when_the_announcement_round_trip_fails(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = add_job(runtime, max_running_jobs=5)
    monkeypatch.setattr(job_runner, "_call_provider", lambda rt, ctx: answered(ctx))

    def lost(final: Job, along: Any = None) -> None:
        along(runtime.redis.pipeline(transaction=False))  # the release is queued, never sent
        raise RedisConnectionError("Connection lost while announcing.")

    monkeypatch.setattr(runtime.outcomes, "announce_job", lost)

    with pytest.raises(RedisConnectionError):
        run_job(runtime, job.id)

    assert reload(runtime, job.id).status == "succeeded"  # committed before the announcement
    assert in_flight(runtime, job.tenant_id) == 0  # not held until its lease ends


def deferred_entries(rt: Runtime) -> list[bytes]:
    entries: list[bytes] = rt.redis.zrange(rt.keys.deferred, 0, -1)  # type: ignore[assignment]
    return entries


def deferred_ids(rt: Runtime) -> list[str]:
    return [json.loads(entry)[0] for entry in deferred_entries(rt)]


def test_a_job_past_its_attempts_fails_before_taking_a_slot_and_leaves_its_backlog(runtime: Runtime) -> None:
    job = add_job(runtime, max_running_jobs=5)
    runtime.dispatcher.publish(job.id, job.tier, job.priority, job.tenant_id)
    with session_scope(runtime.engine) as session:  # claimed max_attempts times already
        session.execute(
            update(Job).where(col(Job.id) == job.id).values(attempts=runtime.settings.max_attempts)
        )

    run_job(runtime, job.id)

    after = reload(runtime, job.id)
    assert (after.status, after.error_code, after.attempt_log) == ("failed", "max_attempts", [])
    assert int(runtime.redis.hget(runtime.keys.tenant_backlog(job.tier), job.tenant_id) or 0) == 0
    assert in_flight(runtime, job.tenant_id) == 0
    entries: Any = runtime.redis.xrange(runtime.keys.tenant_events(job.tenant_id))
    assert [fields[b"type"] for _id, fields in entries] == [b"job.failed"]
