"""The lease heartbeat renews, in one UPDATE a beat, the leases of the jobs its process runs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import col

from schemas.tables import Job, utcnow
from workers import store
from workers.db import session_scope
from workers.lease_heartbeat import LeaseHeartbeat

SHORT_LEASE_S = 2
RENEWED_LEASE_S = 60
REQUEST = {"messages": [{"role": "user", "content": "Hello"}]}


@pytest.fixture
def heartbeat(engine: Engine) -> Iterator[LeaseHeartbeat]:
    """A heartbeat whose thread would beat only once an hour: the tests beat by hand."""
    beats = LeaseHeartbeat(engine, RENEWED_LEASE_S, period_s=3600, max_hold_s=600)
    yield beats
    beats.stop()


def claimed_job(engine: Engine, tenant_id: str) -> str:
    with session_scope(engine) as session:
        job_id = store.insert_job(
            session, tenant_id=tenant_id, tier="small", request=REQUEST, job_metadata={}
        ).id
    assert store.claim_job(engine, job_id, SHORT_LEASE_S) is not None
    return job_id


def lease_of(engine: Engine, job_id: str) -> datetime:
    job = store.load_job(engine, job_id)
    assert job is not None and job.lease_expires_at is not None
    return job.lease_expires_at


def set_columns(engine: Engine, job_id: str, **values: Any) -> None:
    with session_scope(engine) as session:
        session.execute(update(Job).where(col(Job.id) == job_id).values(**values))


def renewed(engine: Engine, job_id: str) -> bool:
    return lease_of(engine, job_id) > utcnow() + timedelta(seconds=RENEWED_LEASE_S - 10)


def test_a_beat_renews_only_the_jobs_held_in_this_process(
    engine: Engine, tenant: str, heartbeat: LeaseHeartbeat
) -> None:
    held, other = claimed_job(engine, tenant), claimed_job(engine, tenant)

    with heartbeat.holding(held):
        assert heartbeat.beat() == 1

    assert renewed(engine, held)
    assert lease_of(engine, other) < utcnow() + timedelta(seconds=SHORT_LEASE_S + 1)


def test_a_job_is_no_longer_renewed_once_its_attempt_ended(
    engine: Engine, tenant: str, heartbeat: LeaseHeartbeat
) -> None:
    job_id = claimed_job(engine, tenant)
    with heartbeat.holding(job_id):
        pass

    assert heartbeat.beat() == 0
    assert not renewed(engine, job_id)


def test_a_beat_rescues_an_expired_lease_the_reconciler_has_not_taken_yet(
    engine: Engine, tenant: str, heartbeat: LeaseHeartbeat
) -> None:
    job_id = claimed_job(engine, tenant)
    set_columns(engine, job_id, lease_expires_at=utcnow() - timedelta(seconds=1))  # a late beat

    with heartbeat.holding(job_id):
        assert heartbeat.beat() == 1

    assert renewed(engine, job_id)


def test_a_beat_never_shortens_a_longer_lease(engine: Engine, tenant: str, heartbeat: LeaseHeartbeat) -> None:
    job_id = claimed_job(engine, tenant)
    parked_until = utcnow() + timedelta(hours=25)  # as a job parked in a provider batch
    set_columns(engine, job_id, lease_expires_at=parked_until)

    with heartbeat.holding(job_id):
        assert heartbeat.beat() == 0

    assert lease_of(engine, job_id) == parked_until


def test_a_job_that_is_not_running_is_not_renewed(
    engine: Engine, tenant: str, heartbeat: LeaseHeartbeat
) -> None:
    job_id = claimed_job(engine, tenant)
    set_columns(engine, job_id, status="queued", lease_expires_at=None)

    with heartbeat.holding(job_id):
        assert heartbeat.beat() == 0


def test_a_job_held_past_the_hard_time_limit_is_let_go(engine: Engine, tenant: str) -> None:
    # A task wedged where no time limit reaches it must lose its lease, so the job runs again.
    heartbeat = LeaseHeartbeat(engine, RENEWED_LEASE_S, period_s=3600, max_hold_s=0.05)
    job_id = claimed_job(engine, tenant)

    with heartbeat.holding(job_id):
        time.sleep(0.1)
        assert heartbeat.held() == []
        assert heartbeat.beat() == 0
    heartbeat.stop()


def test_the_thread_keeps_a_long_attempt_leased(engine: Engine, tenant: str) -> None:
    heartbeat = LeaseHeartbeat(engine, RENEWED_LEASE_S, period_s=0.2, max_hold_s=600)
    job_id = claimed_job(engine, tenant)
    try:
        with heartbeat.holding(job_id):
            deadline = time.monotonic() + 10
            while not renewed(engine, job_id):
                assert time.monotonic() < deadline, "the heartbeat thread never renewed the lease"
                time.sleep(0.05)
    finally:
        heartbeat.stop()
