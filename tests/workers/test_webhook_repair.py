"""The reconciler's webhook repair (workers/webhooks/repair.py), on SQLite and PostgreSQL with
real Redis: a job that ended without its deliveries gets them once, and nothing else does."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select
from tests_support import fresh_postgres_database, make_test_settings, new_tenant_key

from schemas.tables import Job, WebhookDelivery, WebhookEndpoint, utcnow
from workers import store
from workers.celery_app import create_celery
from workers.db import session_scope
from workers.migrate import upgrade
from workers.reconciler import reconcile
from workers.runtime import Runtime
from workers.webhooks.repair import resend_lost
from workers.webhooks.signing import new_secret

CALLBACK = "https://example.com/hooks/switchyard"
REQUEST = {"messages": [{"role": "user", "content": "Hello"}]}


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database per test: a repair pass must see only this test's jobs."""
    with fresh_postgres_database("switchyard_repair") as url:
        yield url


@pytest.fixture
def runtime_with(tmp_path: Path, redis_url: str, database_url: str) -> Iterator[Callable[..., Runtime]]:
    """Runtimes with these ``[webhooks]`` settings (repair_after_s 0 unless given), cleaned up after."""
    made: list[Runtime] = []

    def make(**hooks: Any) -> Runtime:
        webhooks = {"repair_after_s": 0, **hooks}
        settings = make_test_settings(tmp_path, redis_url, database_url, webhooks=webhooks)
        upgrade(settings)
        made.append(Runtime(settings=settings, celery=create_celery(settings)))
        return made[-1]

    yield make
    for runtime in made:
        runtime.redis.delete(runtime.keys.webhook_repair_mark)
        runtime.engine.dispose()


@pytest.fixture
def rt(runtime_with: Callable[..., Runtime]) -> Runtime:
    return runtime_with()


def ended_job(rt: Runtime, tenant_id: str | None = None, ended_s_ago: float = 1.0, **fields: Any) -> Job:
    """A job whose final state is stored but was never announced: a worker died in between."""
    tenant_id = tenant_id or new_tenant_key(rt.engine)[0]
    with session_scope(rt.engine) as session:
        return store.insert_job(
            session,
            tenant_id=tenant_id,
            tier="small",
            request=REQUEST,
            job_metadata={},
            status="succeeded",
            finished_at=utcnow() - timedelta(seconds=ended_s_ago),
            **fields,
        )


def deliveries_of(rt: Runtime, job_id: str) -> list[WebhookDelivery]:
    with Session(rt.engine) as session:
        return list(session.exec(select(WebhookDelivery).where(WebhookDelivery.job_id == job_id)).all())


def add_endpoint(rt: Runtime, tenant_id: str, event_types: list[str] | None = None) -> None:
    now = utcnow()
    endpoint = WebhookEndpoint(
        id=f"we_{now.timestamp()}",
        tenant_id=tenant_id,
        url="https://example.com/hooks/endpoint",
        event_types=event_types or [],
        secret=new_secret(),
        created_at=now,
        updated_at=now,
    )
    with Session(rt.engine) as session:
        session.add(endpoint)
        session.commit()
    rt.redis.delete(rt.keys.webhook_endpoints(tenant_id))


def test_a_job_that_ended_without_its_webhook_gets_it_from_the_reconciler(rt: Runtime) -> None:
    job = ended_job(rt, callback_url=CALLBACK)

    report = reconcile(rt)

    [delivery] = deliveries_of(rt, job.id)
    assert report.webhooks_repaired == 1
    assert (delivery.event_id, delivery.event_type) == (f"evt_{job.id}", "job.succeeded")
    assert delivery.url == CALLBACK
    assert reconcile(rt).webhooks_repaired == 0  # the next pass starts after it
    assert len(deliveries_of(rt, job.id)) == 1


def test_a_job_announced_as_usual_is_left_alone(rt: Runtime) -> None:
    job = ended_job(rt, callback_url=CALLBACK)
    rt.outcomes.announce_job(job)

    rt.redis.delete(rt.keys.webhook_repair_mark)  # look again from the start

    assert resend_lost(rt.outcomes.webhooks) == 0
    assert len(deliveries_of(rt, job.id)) == 1


def test_a_repair_racing_the_usual_path_sends_one_delivery(rt: Runtime) -> None:
    # The repair and a slow worker announce the same end: one event id, so one row.
    job = ended_job(rt, callback_url=CALLBACK)
    assert resend_lost(rt.outcomes.webhooks) == 1

    rt.outcomes.announce_job(job)

    assert len(deliveries_of(rt, job.id)) == 1


def test_a_tenant_endpoint_makes_an_ended_job_a_candidate(rt: Runtime) -> None:
    tenant_id, _ = new_tenant_key(rt.engine)
    add_endpoint(rt, tenant_id)
    job = ended_job(rt, tenant_id)

    assert resend_lost(rt.outcomes.webhooks) == 1

    [delivery] = deliveries_of(rt, job.id)
    assert delivery.endpoint_id is not None


def test_jobs_without_a_webhook_target_are_not_announced(rt: Runtime) -> None:
    job = ended_job(rt)

    assert resend_lost(rt.outcomes.webhooks) == 0
    assert deliveries_of(rt, job.id) == []


def test_jobs_that_ended_lately_are_left_to_the_usual_path(runtime_with: Callable[..., Runtime]) -> None:
    waiting = runtime_with(repair_after_s=60)
    job = ended_job(waiting, callback_url=CALLBACK, ended_s_ago=5)

    assert resend_lost(waiting.outcomes.webhooks) == 0
    assert deliveries_of(waiting, job.id) == []


def test_jobs_older_than_the_lookback_are_not_repaired(runtime_with: Callable[..., Runtime]) -> None:
    recent = runtime_with(repair_lookback_s=600)
    old = ended_job(recent, callback_url=CALLBACK, ended_s_ago=3600)
    new = ended_job(recent, callback_url=CALLBACK, ended_s_ago=60)

    assert resend_lost(recent.outcomes.webhooks) == 1
    assert deliveries_of(recent, old.id) == [] and len(deliveries_of(recent, new.id)) == 1


def test_batch_lines_ended_in_bulk_are_left_to_their_batch_event(rt: Runtime) -> None:
    # A line answered by the cache at submission, or cancelled while queued: never run, never
    # announced one by one, so there is nothing to repair.
    tenant_id, _ = new_tenant_key(rt.engine)
    add_endpoint(rt, tenant_id)
    line = ended_job(rt, tenant_id, batch_id="batch_bulk", batch_line=1)

    assert resend_lost(rt.outcomes.webhooks) == 0
    assert deliveries_of(rt, line.id) == []


def test_a_batch_job_a_worker_ran_is_repaired(rt: Runtime) -> None:
    tenant_id, _ = new_tenant_key(rt.engine)
    add_endpoint(rt, tenant_id)
    ran = ended_job(
        rt, tenant_id, batch_id="batch_run", batch_line=1, started_at=utcnow() - timedelta(seconds=2)
    )

    assert resend_lost(rt.outcomes.webhooks) == 1
    assert len(deliveries_of(rt, ran.id)) == 1
