"""The reconciler repairs what crashes leave behind, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import Session, col, select
from tests_support import (
    fresh_postgres_database,
    new_tenant_key,
    queued_job_ids,
    tier_runtime,
)

from schemas.tables import IdempotencyRecord, Job, utcnow
from workers import store
from workers.broker_watch import mark_intact
from workers.db import session_scope
from workers.reconciler import reconcile
from workers.runtime import Runtime

GRACE_S = 5.0
REQUEST = {"messages": [{"role": "user", "content": "Hello"}]}


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database per test: a sweep must see only this test's rows."""
    with fresh_postgres_database("switchyard_reconcile") as url:
        yield url


@pytest.fixture
def tier() -> str:
    """A tier no other test run publishes to, so its queue holds only this test's messages."""
    return f"reconcile{uuid.uuid4().hex[:8]}"


@pytest.fixture
def runtime(tmp_path: Path, redis_url: str, database_url: str, tier: str) -> Iterator[Runtime]:
    with tier_runtime(tmp_path, redis_url, database_url, tier, ["emu-a"], orphan_grace_s=GRACE_S) as rt:
        mark_intact(rt.redis, rt.keys)  # this Redis lost nothing (tests/workers/test_broker_loss.py)
        yield rt


def queued_ids(rt: Runtime, queue: str) -> list[str]:
    return queued_job_ids(rt.redis, queue)


def add_job(rt: Runtime, tier: str, **fields: Any) -> str:
    tenant_id, _ = new_tenant_key(rt.engine)
    with session_scope(rt.engine) as session:
        job = store.insert_job(
            session, tenant_id=tenant_id, tier=tier, request=REQUEST, job_metadata={}, **fields
        )
        return job.id


def set_columns(rt: Runtime, job_id: str, **values: Any) -> None:
    with session_scope(rt.engine) as session:
        session.execute(update(Job).where(col(Job.id) == job_id).values(**values))


def read(rt: Runtime, job_id: str) -> Job:
    job = store.load_job(rt.engine, job_id)
    assert job is not None
    return job


def long_ago(seconds: float = GRACE_S + 10) -> Any:
    return utcnow() - timedelta(seconds=seconds)


def test_unpublished_job_past_grace_is_published(runtime: Runtime, tier: str) -> None:
    job_id = add_job(runtime, tier)
    set_columns(runtime, job_id, updated_at=long_ago())

    report = reconcile(runtime)

    assert report.published == 1
    assert queued_ids(runtime, f"tier.{tier}.live") == [job_id]
    job = read(runtime, job_id)
    assert job.status == "queued"
    assert job.published_at is not None


def test_unpublished_batch_job_goes_to_its_priority_queue(runtime: Runtime, tier: str) -> None:
    job_id = add_job(runtime, tier, priority="batch")
    set_columns(runtime, job_id, updated_at=long_ago())

    reconcile(runtime)

    assert queued_ids(runtime, f"tier.{tier}.batch") == [job_id]
    assert queued_ids(runtime, f"tier.{tier}.live") == []


def test_unpublished_job_inside_grace_is_left_alone(runtime: Runtime, tier: str) -> None:
    job_id = add_job(runtime, tier)

    report = reconcile(runtime)

    assert report.published == 0
    assert queued_ids(runtime, f"tier.{tier}.live") == []
    assert read(runtime, job_id).published_at is None


def test_unpublished_job_before_its_not_before_is_left_alone(runtime: Runtime, tier: str) -> None:
    job_id = add_job(runtime, tier, not_before=utcnow() + timedelta(minutes=5))
    set_columns(runtime, job_id, updated_at=long_ago())

    reconcile(runtime)
    assert queued_ids(runtime, f"tier.{tier}.live") == []

    set_columns(runtime, job_id, not_before=long_ago(1))
    reconcile(runtime)
    assert queued_ids(runtime, f"tier.{tier}.live") == [job_id]


def test_published_job_is_republished_only_after_republish_interval(runtime: Runtime, tier: str) -> None:
    job_id = add_job(runtime, tier)
    set_columns(runtime, job_id, updated_at=long_ago(), published_at=long_ago())

    reconcile(runtime)
    assert queued_ids(runtime, f"tier.{tier}.live") == []

    lost_at = long_ago(runtime.settings.republish_after_s + 60)
    set_columns(runtime, job_id, published_at=lost_at)
    reconcile(runtime)
    assert queued_ids(runtime, f"tier.{tier}.live") == [job_id]
    published_at = read(runtime, job_id).published_at
    assert published_at is not None and published_at > lost_at


def test_running_job_with_expired_lease_is_requeued_and_published(runtime: Runtime, tier: str) -> None:
    job_id = add_job(runtime, tier)
    assert store.claim_job(runtime.engine, job_id, runtime.settings.lease_s) is not None
    set_columns(runtime, job_id, lease_expires_at=long_ago(1))

    report = reconcile(runtime)

    assert (report.requeued, report.dead_lettered, report.published) == (1, 0, 1)
    job = read(runtime, job_id)
    assert job.status == "queued"
    assert (job.lease_token, job.lease_expires_at) == (None, None)
    assert job.attempts == 1
    assert job.published_at is not None
    assert queued_ids(runtime, f"tier.{tier}.live") == [job_id]
    # The message lets a worker claim it again.
    reclaimed = store.claim_job(runtime.engine, job_id, runtime.settings.lease_s)
    assert reclaimed is not None and reclaimed.attempts == 2


def test_running_job_with_live_lease_is_left_alone(runtime: Runtime, tier: str) -> None:
    job_id = add_job(runtime, tier)
    claimed = store.claim_job(runtime.engine, job_id, runtime.settings.lease_s)
    assert claimed is not None

    report = reconcile(runtime)

    assert (report.requeued, report.dead_lettered, report.published) == (0, 0, 0)
    job = read(runtime, job_id)
    assert (job.status, job.lease_token) == ("running", claimed.lease_token)
    assert queued_ids(runtime, f"tier.{tier}.live") == []


def test_expired_lease_with_attempts_used_up_fails_with_max_attempts(runtime: Runtime, tier: str) -> None:
    job_id = add_job(runtime, tier)
    assert store.claim_job(runtime.engine, job_id, runtime.settings.lease_s) is not None
    set_columns(runtime, job_id, attempts=runtime.settings.max_attempts, lease_expires_at=long_ago(1))
    events = runtime.redis.pubsub(ignore_subscribe_messages=True)
    events.subscribe(runtime.keys.job_events)
    events.get_message(timeout=1)  # the subscribe confirmation

    report = reconcile(runtime)

    assert (report.requeued, report.dead_lettered, report.published) == (0, 1, 0)
    job = read(runtime, job_id)
    assert (job.status, job.error_code) == ("failed", "max_attempts")
    assert job.error_message
    assert job.finished_at is not None
    assert job.lease_token is None
    assert queued_ids(runtime, f"tier.{tier}.live") == []
    event = events.get_message(timeout=2)
    events.close()
    assert event is not None
    payload = json.loads(event["data"])
    assert {k: payload[k] for k in ("job_id", "tenant_id", "status")} == {
        "job_id": job_id,
        "tenant_id": job.tenant_id,
        "status": "failed",
    }
    # The dead letter's wake-up carries the failed job, as the worker's does.
    assert (payload["job"]["status"], payload["job"]["error"]["code"]) == ("failed", "max_attempts")


def test_expired_idempotency_records_are_purged(runtime: Runtime, tier: str) -> None:
    job_id = add_job(runtime, tier)
    tenant_id = read(runtime, job_id).tenant_id
    now = utcnow()
    with session_scope(runtime.engine) as session:
        for key, expires_at in (("expired", now - timedelta(seconds=1)), ("fresh", now + timedelta(hours=1))):
            session.add(
                IdempotencyRecord(
                    tenant_id=tenant_id,
                    key=key,
                    request_hash="0" * 64,
                    job_id=job_id,
                    created_at=now - timedelta(days=1),
                    expires_at=expires_at,
                )
            )

    report = reconcile(runtime)

    assert report.idempotency_purged == 1
    with Session(runtime.engine) as session:
        remaining = session.exec(select(IdempotencyRecord.key)).all()
    assert remaining == ["fresh"]


def test_each_pass_resets_the_fair_order_backlogs_from_the_queued_rows(runtime: Runtime, tier: str) -> None:
    first = add_job(runtime, tier)
    add_job(runtime, tier, priority="batch")
    tenant = read(runtime, first).tenant_id
    key = runtime.keys.tenant_backlog(tier)
    runtime.redis.hset(key, mapping={tenant: 40, "ten_gone": 7})  # drifted counters

    reconcile(runtime)

    raw: dict[Any, Any] = runtime.redis.hgetall(key)  # type: ignore[assignment]
    counts = {k.decode(): int(v) for k, v in raw.items()}
    assert counts[tenant] == 1 and "ten_gone" not in counts
    assert sum(counts.values()) == 2  # each job of add_job has its own tenant
