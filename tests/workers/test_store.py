"""The job store's conditional state changes, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import delete, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col
from tests_support import new_tenant_key

from schemas.errors import JobNotCancelable, NotFound
from schemas.jobs import JobPublic
from schemas.tables import Job, utcnow
from workers import store
from workers.db import session_scope

LEASE_S = 180
REQUEST = {"messages": [{"role": "user", "content": "Hello"}]}


def add_job(engine: Engine, tenant_id: str, tier: str = "small", **fields: Any) -> str:
    """Insert a queued job and return its id."""
    with session_scope(engine) as session:
        job = store.insert_job(
            session, tenant_id=tenant_id, tier=tier, request=REQUEST, job_metadata={}, **fields
        )
        return job.id


def set_columns(engine: Engine, job_id: str, **values: Any) -> None:
    """Write columns directly, as time passing or another process would."""
    with session_scope(engine) as session:
        session.execute(update(Job).where(col(Job.id) == job_id).values(**values))


def read(engine: Engine, job_id: str) -> Job:
    job = store.load_job(engine, job_id)
    assert job is not None
    return job


def test_inserted_job_reads_back_queued_for_its_tenant(engine: Engine, tenant: str) -> None:
    job_id = add_job(engine, tenant, priority="batch", callback_url="https://example.com/hook")

    with Session(engine) as session:
        job = store.get_job(session, tenant, job_id)

    assert job.id.startswith("job_")
    assert (job.status, job.tier, job.priority) == ("queued", "small", "batch")
    assert job.request == REQUEST
    assert job.callback_url == "https://example.com/hook"
    assert job.attempts == 0
    assert job.lease_token is None


def test_get_job_of_another_tenant_raises_not_found(engine: Engine, tenant: str) -> None:
    job_id = add_job(engine, tenant)
    other_tenant, _ = new_tenant_key(engine)

    with Session(engine) as session, pytest.raises(NotFound):
        store.get_job(session, other_tenant, job_id)


def test_get_unknown_job_raises_not_found(engine: Engine, tenant: str) -> None:
    with Session(engine) as session, pytest.raises(NotFound):
        store.get_job(session, tenant, "job_does_not_exist")


def test_claim_moves_queued_job_to_running_with_lease_and_counts_attempt(engine: Engine, tenant: str) -> None:
    job_id = add_job(engine, tenant)
    before = utcnow()

    job = store.claim_job(engine, job_id, LEASE_S)

    assert job is not None
    assert job.status == "running"
    assert job.attempts == 1
    assert job.lease_token
    assert job.lease_expires_at is not None
    assert (
        before + timedelta(seconds=LEASE_S) <= job.lease_expires_at <= utcnow() + timedelta(seconds=LEASE_S)
    )
    assert job.started_at is not None
    stored = read(engine, job_id)
    assert (stored.status, stored.attempts, stored.lease_token) == ("running", 1, job.lease_token)


def test_second_claim_returns_none_while_lease_holds(engine: Engine, tenant: str) -> None:
    job_id = add_job(engine, tenant)
    first = store.claim_job(engine, job_id, LEASE_S)

    second = store.claim_job(engine, job_id, LEASE_S)

    assert first is not None
    assert second is None
    stored = read(engine, job_id)
    assert stored.attempts == 1
    assert stored.lease_token == first.lease_token


def test_claim_leaves_a_running_job_with_expired_lease_to_the_reconciler(engine: Engine, tenant: str) -> None:
    # Its lost attempt is recorded first (workers/lease_recovery.py); a duplicate message
    # taking the row here would skip that record.
    job_id = add_job(engine, tenant)
    first = store.claim_job(engine, job_id, LEASE_S)
    assert first is not None
    set_columns(engine, job_id, lease_expires_at=utcnow() - timedelta(seconds=1))

    assert store.claim_job(engine, job_id, LEASE_S) is None

    stored = read(engine, job_id)
    assert (stored.status, stored.attempts, stored.lease_token) == ("running", 1, first.lease_token)


def claimed_then_lost(engine: Engine, tenant_id: str) -> tuple[str, Job]:
    """A job whose worker died: claimed, its lease run out, requeued by the reconciler."""
    job_id = add_job(engine, tenant_id)
    first = store.claim_job(engine, job_id, LEASE_S)
    assert first is not None
    set_columns(engine, job_id, lease_expires_at=utcnow() - timedelta(seconds=1))
    assert store.requeue_expired(engine, job_id, first.lease_token, None)
    return job_id, first


def test_job_requeued_after_lease_expiry_is_claimed_with_new_token(engine: Engine, tenant: str) -> None:
    job_id, first = claimed_then_lost(engine, tenant)

    second = store.claim_job(engine, job_id, LEASE_S)

    assert second is not None
    assert second.status == "running"
    assert second.attempts == 2
    assert second.lease_token and second.lease_token != first.lease_token
    assert second.lease_expires_at is not None and second.lease_expires_at > utcnow()


def test_claim_waits_for_not_before(engine: Engine, tenant: str) -> None:
    job_id = add_job(engine, tenant, not_before=utcnow() + timedelta(minutes=5))

    assert store.claim_job(engine, job_id, LEASE_S) is None
    assert read(engine, job_id).status == "queued"

    set_columns(engine, job_id, not_before=utcnow() - timedelta(seconds=1))
    claimed = store.claim_job(engine, job_id, LEASE_S)
    assert claimed is not None and claimed.status == "running"


def test_claim_of_final_job_returns_none(engine: Engine, tenant: str) -> None:
    job_id = add_job(engine, tenant)
    store.cancel_job(engine, tenant, job_id)

    assert store.claim_job(engine, job_id, LEASE_S) is None
    assert read(engine, job_id).status == "canceled"


def test_finish_with_stale_lease_token_changes_nothing(engine: Engine, tenant: str) -> None:
    job_id, zombie = claimed_then_lost(engine, tenant)
    successor = store.claim_job(engine, job_id, LEASE_S)
    assert successor is not None

    assert store.finish_job(engine, zombie, status="succeeded", result={"zombie": True}) is None
    assert store.fail_job(engine, zombie, "provider_error", "zombie says no") is None
    stored = read(engine, job_id)
    assert (stored.status, stored.result, stored.error_code) == ("running", None, None)
    assert stored.lease_token == successor.lease_token

    finished = store.finish_job(engine, successor, status="succeeded", result={"ok": True})
    assert finished is not None and finished.status == "succeeded" and finished.result == {"ok": True}
    finished = read(engine, job_id)
    assert (finished.status, finished.result, finished.lease_token) == ("succeeded", {"ok": True}, None)


def test_finish_does_nothing_once_job_is_final(engine: Engine, tenant: str) -> None:
    job_id = add_job(engine, tenant)
    job = store.claim_job(engine, job_id, LEASE_S)
    assert job is not None
    failed = store.fail_job(engine, job, "provider_bad_request", "bad")
    assert failed is not None and failed.error_code == "provider_bad_request"

    assert store.finish_job(engine, job, status="succeeded") is None
    assert read(engine, job_id).status == "failed"


def test_cancel_queued_job_marks_it_canceled(engine: Engine, tenant: str) -> None:
    job_id = add_job(engine, tenant)

    job = store.cancel_job(engine, tenant, job_id)

    assert job.status == "canceled"
    assert job.finished_at is not None
    stored = read(engine, job_id)
    assert (stored.status, stored.error_code) == ("canceled", "canceled")


def test_cancel_running_job_raises_not_cancelable(engine: Engine, tenant: str) -> None:
    job_id = add_job(engine, tenant)
    assert store.claim_job(engine, job_id, LEASE_S) is not None

    with pytest.raises(JobNotCancelable):
        store.cancel_job(engine, tenant, job_id)
    assert read(engine, job_id).status == "running"


def test_cancel_of_another_tenants_job_raises_not_found(engine: Engine, tenant: str) -> None:
    job_id = add_job(engine, tenant)
    other_tenant, _ = new_tenant_key(engine)

    with pytest.raises(NotFound):
        store.cancel_job(engine, other_tenant, job_id)
    assert read(engine, job_id).status == "queued"


def add_jobs_at(engine: Engine, tenant_id: str, count: int, **fields: Any) -> list[str]:
    """Insert jobs created one minute apart, oldest first; returns their ids oldest first."""
    start = utcnow() - timedelta(hours=1)
    ids = []
    for index in range(count):
        job_id = add_job(engine, tenant_id, **fields)
        set_columns(engine, job_id, created_at=start + timedelta(minutes=index))
        ids.append(job_id)
    return ids


def page_ids(
    engine: Engine, tenant_id: str, limit: int, cursor_id: str | None = None, **filters: Any
) -> list[str]:
    with Session(engine) as session:
        cursor = store.get_job(session, tenant_id, cursor_id) if cursor_id else None
        rows = store.list_jobs(session, tenant_id, limit=limit, cursor=cursor, **filters)
        return [job.id for job in rows]


def test_list_jobs_pages_newest_first_with_cursor(engine: Engine, tenant: str) -> None:
    oldest_first = add_jobs_at(engine, tenant, 5)
    newest_first = oldest_first[::-1]

    first = page_ids(engine, tenant, limit=2)
    # One extra row tells the caller there is another page.
    assert first == newest_first[:3]
    second = page_ids(engine, tenant, limit=2, cursor_id=first[1])
    assert second == newest_first[2:5]
    last = page_ids(engine, tenant, limit=2, cursor_id=second[1])
    assert last == newest_first[4:]


def test_list_jobs_breaks_created_at_ties_by_id(engine: Engine, tenant: str) -> None:
    same_time = utcnow() - timedelta(minutes=1)
    ids = [add_job(engine, tenant) for _ in range(4)]
    for job_id in ids:
        set_columns(engine, job_id, created_at=same_time)
    expected = sorted(ids, reverse=True)

    first = page_ids(engine, tenant, limit=2)
    second = page_ids(engine, tenant, limit=2, cursor_id=first[1])

    assert first[:2] + second == expected


def test_list_jobs_filters_by_status_and_tier(engine: Engine, tenant: str) -> None:
    small_queued = add_job(engine, tenant, tier="small")
    small_canceled = add_job(engine, tenant, tier="small")
    store.cancel_job(engine, tenant, small_canceled)
    local_queued = add_job(engine, tenant, tier="local")

    assert set(page_ids(engine, tenant, limit=10, status="queued")) == {small_queued, local_queued}
    assert page_ids(engine, tenant, limit=10, status="canceled") == [small_canceled]
    assert set(page_ids(engine, tenant, limit=10, tier="small")) == {small_queued, small_canceled}
    assert page_ids(engine, tenant, limit=10, tier="small", status="queued") == [small_queued]
    assert page_ids(engine, tenant, limit=10, tier="local", status="canceled") == []


def test_list_jobs_shows_only_the_tenants_jobs(engine: Engine, tenant: str) -> None:
    mine = add_job(engine, tenant)
    other_tenant, _ = new_tenant_key(engine)
    theirs = add_job(engine, other_tenant)
    try:
        assert page_ids(engine, tenant, limit=10) == [mine]
        assert page_ids(engine, other_tenant, limit=10) == [theirs]
    finally:
        with session_scope(engine) as session:
            session.execute(delete(Job).where(col(Job.tenant_id) == other_tenant))


def test_timestamps_come_back_timezone_aware_utc(engine: Engine, tenant: str) -> None:
    job_id = add_job(engine, tenant, not_before=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert store.claim_job(engine, job_id, LEASE_S) is None  # not_before is in the future
    set_columns(engine, job_id, not_before=None)
    claimed = store.claim_job(engine, job_id, LEASE_S)
    assert claimed is not None

    with Session(engine) as session:
        job = store.get_job(session, tenant, job_id)
        listed = store.list_jobs(session, tenant, limit=1)[0]

    for value in (job.created_at, job.updated_at, job.started_at, job.lease_expires_at, listed.created_at):
        assert value is not None
        assert value.tzinfo is not None
        assert value.utcoffset() == timedelta(0)
    assert abs(job.created_at - utcnow()) < timedelta(minutes=1)


def test_non_utc_timestamps_are_stored_as_the_same_instant(engine: Engine, tenant: str) -> None:
    plus_two = timezone(timedelta(hours=2))
    instant = datetime(2030, 6, 1, 12, 0, 0, tzinfo=plus_two)
    job_id = add_job(engine, tenant, not_before=instant)

    stored = read(engine, job_id).not_before

    assert stored == instant
    assert stored is not None and stored.utcoffset() == timedelta(0)
    assert stored.hour == 10


def test_finish_returns_the_row_as_stored_so_events_can_carry_it(engine: Engine, tenant: str) -> None:
    job_id = add_job(engine, tenant)
    job = store.claim_job(engine, job_id, LEASE_S)
    assert job is not None

    finished = store.finish_job(
        engine, job, status="succeeded", result={"id": "x"}, model="emu-a", prompt_tokens=3,
        completion_tokens=4, cost_usd=0.25, finished_at=utcnow(),
    )  # fmt: skip

    assert finished is not None
    assert JobPublic.from_row(finished) == JobPublic.from_row(read(engine, job_id))
