"""The reconciler publishes every queued job again once Redis lost its data (workers/broker_watch.py).

A loss is played by deleting what a Redis restart without persistence loses of this test's
keys (the marker, the tier's queues and the deferred set), a restart from an older snapshot
by a marker that names another server process. SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import col
from tests_support import (
    fresh_postgres_database,
    new_tenant_key,
    queued_job_ids,
    tier_runtime,
)

from schemas.settings import PRIORITIES
from schemas.tables import Job, utcnow
from workers import broker_watch, store
from workers.broker_watch import mark_intact, republish_after_loss, server_run_id, take_repair
from workers.db import session_scope
from workers.dispatch import priority_keys
from workers.reconciler import reconcile
from workers.runtime import Runtime

REQUEST = {"messages": [{"role": "user", "content": "Hello"}]}


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database per test: a repair must see only this test's rows."""
    with fresh_postgres_database("switchyard_broker_loss") as url:
        yield url


@pytest.fixture
def tier() -> str:
    """A tier of this test alone, so its queues hold only this test's messages."""
    return f"loss{uuid.uuid4().hex[:8]}"


@pytest.fixture
def rt(tmp_path: Path, redis_url: str, database_url: str, tier: str) -> Iterator[Runtime]:
    """A runtime whose Redis is intact (the marker written), as after a first pass."""
    with tier_runtime(tmp_path, redis_url, database_url, tier, ["emu-a"]) as runtime:
        mark_intact(runtime.redis, runtime.keys)
        yield runtime


def published_job(rt: Runtime, tier: str, **fields: Any) -> str:
    """A queued job whose message went out a minute ago (as the API leaves it)."""
    tenant_id, _ = new_tenant_key(rt.engine)
    with session_scope(rt.engine) as session:
        job = store.insert_job(
            session, tenant_id=tenant_id, tier=tier, request=REQUEST, job_metadata={}, **fields
        )
    minute_ago = utcnow() - timedelta(minutes=1)
    with session_scope(rt.engine) as session:
        session.execute(
            update(Job).where(col(Job.id) == job.id).values(published_at=minute_ago, updated_at=minute_ago)
        )
    return job.id


def lose_redis(rt: Runtime, tier: str) -> None:
    """What an empty restart does to this test's keys."""
    lists = [key for priority in PRIORITIES for key in priority_keys(f"tier.{tier}.{priority}")]
    rt.redis.delete(rt.keys.broker_marker, rt.keys.deferred, *lists)


def live_queue(rt: Runtime, tier: str) -> list[str]:
    return queued_job_ids(rt.redis, f"tier.{tier}.live")


def deferred_entries(rt: Runtime) -> dict[str, float]:
    raw: list[tuple[bytes, float]] = rt.redis.zrange(rt.keys.deferred, 0, -1, withscores=True)  # type: ignore[assignment]
    return {json.loads(entry)[0]: score for entry, score in raw}


def test_queued_jobs_whose_messages_redis_lost_are_published_on_the_next_pass(rt: Runtime, tier: str) -> None:
    job_ids = sorted(published_job(rt, tier) for _ in range(3))
    lose_redis(rt, tier)

    report = reconcile(rt)

    assert report.republished_after_loss == 3
    assert sorted(live_queue(rt, tier)) == job_ids
    # A worker can claim each of them from its new message.
    assert all(store.claim_job(rt.engine, job_id, rt.settings.lease_s) for job_id in job_ids)


def test_an_intact_redis_gets_no_second_message(rt: Runtime, tier: str) -> None:
    published_job(rt, tier)

    report = reconcile(rt)

    assert report.republished_after_loss == 0
    assert live_queue(rt, tier) == []


def test_the_repair_happens_once_and_leaves_the_marker_for_good(rt: Runtime, tier: str) -> None:
    job_id = published_job(rt, tier)
    lose_redis(rt, tier)
    first = reconcile(rt)

    second = reconcile(rt)

    assert (first.republished_after_loss, second.republished_after_loss) == (1, 0)
    assert live_queue(rt, tier) == [job_id]
    assert rt.redis.ttl(rt.keys.broker_marker) == -1  # no expiry: only a loss removes it
    assert rt.redis.get(rt.keys.broker_marker) == server_run_id(rt.redis).encode()
    published_at = store.load_job(rt.engine, job_id).published_at  # type: ignore[union-attr]
    assert published_at is not None and published_at > utcnow() - timedelta(seconds=30)


def test_a_waiting_job_whose_deferred_entry_was_lost_is_deferred_again_for_its_time_left(
    rt: Runtime, tier: str
) -> None:
    due_at = utcnow() + timedelta(seconds=20)
    job_id = published_job(rt, tier, not_before=due_at)
    lose_redis(rt, tier)

    reconcile(rt)

    assert live_queue(rt, tier) == []  # published now, its claim would refuse it
    assert deferred_entries(rt)[job_id] == pytest.approx(due_at.timestamp(), abs=2)


def test_jobs_that_are_running_ended_or_never_published_are_left_to_their_own_passes(
    rt: Runtime, tier: str
) -> None:
    running = published_job(rt, tier)
    assert store.claim_job(rt.engine, running, rt.settings.lease_s) is not None
    ended = published_job(rt, tier)
    with session_scope(rt.engine) as session:
        session.execute(update(Job).where(col(Job.id) == ended).values(status="canceled"))
    tenant_id, _ = new_tenant_key(rt.engine)
    with session_scope(rt.engine) as session:  # just committed, its publish still to come
        store.insert_job(session, tenant_id=tenant_id, tier=tier, request=REQUEST, job_metadata={})
    lose_redis(rt, tier)

    report = reconcile(rt)

    assert report.republished_after_loss == 0
    assert live_queue(rt, tier) == []


def test_a_repair_goes_through_every_page(rt: Runtime, tier: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(broker_watch, "PAGE", 2)
    job_ids = sorted(published_job(rt, tier) for _ in range(5))
    lose_redis(rt, tier)

    assert republish_after_loss(rt) == 5

    assert sorted(live_queue(rt, tier)) == job_ids


def test_a_marker_of_another_server_process_means_a_restart_and_gets_a_repair(rt: Runtime, tier: str) -> None:
    # A restart from a snapshot or a failover keeps the marker but may lose the last messages.
    job_id = published_job(rt, tier)
    rt.redis.set(rt.keys.broker_marker, "0" * 40)  # the run_id of the server before the restart

    report = reconcile(rt)

    assert report.republished_after_loss == 1
    assert live_queue(rt, tier) == [job_id]
    assert rt.redis.get(rt.keys.broker_marker) == server_run_id(rt.redis).encode()


def test_one_reconciler_repairs_at_a_time_and_a_dead_repairer_lets_go(rt: Runtime) -> None:
    rt.redis.delete(rt.keys.broker_marker)

    assert take_repair(rt.redis, rt.keys) == server_run_id(rt.redis)
    assert take_repair(rt.redis, rt.keys) is None  # a second reconciler leaves it to the first
    ttl = rt.redis.ttl(rt.keys.broker_marker)
    assert 0 < ttl <= broker_watch.REPAIR_HOLD_S  # if the first dies, the hold lapses
