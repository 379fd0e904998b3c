"""Webhook deliveries in process, on SQLite and PostgreSQL with real Redis and a real receiver
(uvicorn on loopback, checking signatures with the ``standardwebhooks`` package): emitting,
signing, retries on a compressed schedule, the dead letter and redelivery, 410, Retry-After,
secret rotation, callback URLs and the SSRF guard at send time."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, update
from sqlmodel import Session, col, select
from tests_support import make_test_settings, new_tenant_key
from webhook_receiver import WebhookReceiverServer

from schemas.settings import Settings, WebhookSettings
from schemas.tables import WebhookDelivery, WebhookEndpoint, utcnow
from workers.celery_app import create_celery
from workers.event import Event
from workers.migrate import upgrade
from workers.outcomes import Outcomes
from workers.runtime import Runtime
from workers.webhooks import deliveries
from workers.webhooks.delivery import Deliverer
from workers.webhooks.endpoints import tenant_secret
from workers.webhooks.signing import new_secret
from workers.webhooks.transport import guarded_client

SCHEDULE = [0.0, 1.0, 2.0, 4.0, 8.0]  # five attempts, compressed; the real one is minutes to hours


def forget_keys(redis: Any, prefix: str) -> None:
    """Drop every key and queue of this test's prefix."""
    names = redis.keys(f"*{prefix}*")
    if names:
        redis.delete(*names)


@pytest.fixture
def rt(tmp_path: Path, redis_url: str, database_url: str) -> Iterator[Runtime]:
    # First attempts through the queue, so each test makes every attempt itself.
    hooks = {"allow_loopback": True, "retry_schedule_s": SCHEDULE, "jitter": 0.0, "first_attempt": "queue"}
    settings = make_test_settings(tmp_path, redis_url, database_url, webhooks=hooks)
    upgrade(settings)
    runtime = Runtime(settings=settings, celery=create_celery(settings))
    yield runtime
    forget_keys(runtime.redis, settings.key_prefix)
    runtime.engine.dispose()


@pytest.fixture
def receivers() -> Iterator[list[WebhookReceiverServer]]:
    started: list[WebhookReceiverServer] = []
    yield started
    for receiver in started:
        receiver.stop()


def receiver_for(
    receivers: list[WebhookReceiverServer], *secrets: str, script: list[int] | None = None
) -> Any:
    receiver = WebhookReceiverServer(list(secrets), script=list(script or [])).start()
    receivers.append(receiver)
    return receiver


def add_endpoint(rt: Runtime, tenant_id: str, url: str, **fields: Any) -> WebhookEndpoint:
    now = utcnow()
    values = {"event_types": [], "secret": new_secret(), "created_at": now, "updated_at": now, **fields}
    row = WebhookEndpoint(id=f"we_{now.timestamp()}{len(url)}", tenant_id=tenant_id, url=url, **values)
    with Session(rt.engine, expire_on_commit=False) as session:
        session.add(row)
        session.commit()
    rt.redis.delete(rt.keys.webhook_endpoints(tenant_id))
    return row


def job_event(tenant_id: str, status: str = "succeeded", **data: Any) -> Event:
    job: dict[str, Any] = {
        "id": "job_1",
        "object": "job",
        "status": status,
        "result": {"choices": []},
        "callback_url": None,
    }
    return Event(tenant_id, f"job.{status}", {**job, **data})


def rows(rt: Runtime, tenant_id: str) -> list[WebhookDelivery]:
    with Session(rt.engine) as session:
        query = select(WebhookDelivery).where(WebhookDelivery.tenant_id == tenant_id)
        return list(session.exec(query.order_by(col(WebhookDelivery.created_at))).all())


def only_delivery(rt: Runtime, tenant_id: str) -> WebhookDelivery:
    [row] = rows(rt, tenant_id)
    return row


def attempt(rt: Runtime, delivery: WebhookDelivery, deliverer: Deliverer | None = None) -> str:
    current = next(row for row in rows(rt, delivery.tenant_id) if row.id == delivery.id)
    return (deliverer or rt.outcomes.webhooks.deliverer).attempt(current.id, current.attempts)


def test_an_event_reaches_a_real_receiver_signed(rt: Runtime, receivers: list[Any]) -> None:
    tenant_id, _ = new_tenant_key(rt.engine)
    endpoint = add_endpoint(rt, tenant_id, "")
    receiver = receiver_for(receivers, endpoint.secret)
    with Session(rt.engine) as session:
        session.exec(
            update(WebhookEndpoint).where(col(WebhookEndpoint.id) == endpoint.id).values(url=receiver.url)
        )  # type: ignore[call-overload]
        session.commit()
    rt.redis.delete(rt.keys.webhook_endpoints(tenant_id))
    event = job_event(tenant_id)

    rt.outcomes.emit(event)

    delivery = only_delivery(rt, tenant_id)
    assert (delivery.status, delivery.attempts, delivery.event_id) == ("pending", 0, event.id)
    assert rt.redis.llen(rt.keys.webhook_queue) == 1  # the first attempt was published at once
    assert attempt(rt, delivery) == "succeeded"
    [arrival] = receiver.arrivals
    assert arrival.verified_with == [0] and arrival.headers["webhook-id"] == event.id
    body = json.loads(arrival.body)
    assert body["type"] == "job.succeeded" and body["data"]["id"] == "job_1"
    assert body["timestamp"] == event.timestamp.isoformat()
    done = only_delivery(rt, tenant_id)
    assert (done.status, done.attempts, done.last_status_code, done.next_attempt_at) == (
        "succeeded",
        1,
        200,
        None,
    )
    assert done.last_response_ms is not None and done.last_response_ms > 0


def test_down_for_three_attempts_then_delivered_on_the_fourth_once(rt: Runtime, receivers: list[Any]) -> None:
    tenant_id, _ = new_tenant_key(rt.engine)
    secret = new_secret()
    receiver = receiver_for(receivers, secret, script=[503, 503, 503])
    add_endpoint(rt, tenant_id, receiver.url, secret=secret)
    rt.outcomes.emit(job_event(tenant_id))
    delivery = only_delivery(rt, tenant_id)

    outcomes = []
    for expected_delay in SCHEDULE[1:4]:
        before = utcnow()
        outcomes.append(attempt(rt, delivery))
        after, delay = utcnow(), timedelta(seconds=expected_delay)
        due = only_delivery(rt, tenant_id).next_attempt_at
        assert due is not None and before + delay <= due <= after + delay  # no jitter in this test
    outcomes.append(attempt(rt, delivery))

    assert outcomes == ["retrying", "retrying", "retrying", "succeeded"]
    arrivals = receiver.arrivals
    assert [a.answered for a in arrivals] == [503, 503, 503, 200]
    assert {a.headers["webhook-id"] for a in arrivals} == {delivery.event_id}
    assert all(a.verified_with == [0] for a in arrivals)
    assert only_delivery(rt, tenant_id).attempts == 4
    # A redelivery carries the same webhook-id: the receiver's dedupe keeps it to one event.
    deliveries.reopen(rt.engine, [deliveries.TABLE.c.id == delivery.id], 60, 1)
    assert attempt(rt, delivery) == "succeeded"
    assert len(receiver.arrivals) == 5 and len(receiver.processed) == 1


def test_a_spent_schedule_dead_letters_and_redelivery_succeeds(rt: Runtime, receivers: list[Any]) -> None:
    tenant_id, _ = new_tenant_key(rt.engine)
    secret = new_secret()
    receiver = receiver_for(receivers, secret, script=[500] * len(SCHEDULE))
    add_endpoint(rt, tenant_id, receiver.url, secret=secret)
    rt.outcomes.emit(job_event(tenant_id, "failed"))
    delivery = only_delivery(rt, tenant_id)

    outcomes = [attempt(rt, delivery) for _ in SCHEDULE]

    assert outcomes == ["retrying"] * (len(SCHEDULE) - 1) + ["failed"]
    dead = only_delivery(rt, tenant_id)
    assert (dead.status, dead.attempts, dead.last_status_code, dead.next_attempt_at) == (
        "failed",
        5,
        500,
        None,
    )
    assert attempt(rt, delivery) == "skipped"  # nothing more is sent from the dead letter
    assert deliveries.reopen(rt.engine, [deliveries.TABLE.c.id == delivery.id], 60, 1) == [delivery.id]
    assert attempt(rt, delivery) == "succeeded"
    assert [a.answered for a in receiver.arrivals] == [500] * 5 + [200]
    assert only_delivery(rt, tenant_id).status == "succeeded"


def test_due_retries_are_taken_from_the_database_once(rt: Runtime, receivers: list[Any]) -> None:
    tenant_id, _ = new_tenant_key(rt.engine)
    secret = new_secret()
    receiver = receiver_for(receivers, secret, script=[503])
    add_endpoint(rt, tenant_id, receiver.url, secret=secret)
    rt.outcomes.emit(job_event(tenant_id))
    delivery = only_delivery(rt, tenant_id)

    def taken_now(at: datetime) -> list[tuple[str, int]]:
        # PostgreSQL is one database for the whole run: earlier tests' due rows are taken too.
        return [row for row in deliveries.take_due(rt.engine, at, 60) if row[0] == delivery.id]

    assert taken_now(utcnow()) == []  # held while its first attempt is queued
    attempt(rt, delivery)

    later = utcnow() + timedelta(seconds=SCHEDULE[1] + 0.5)
    assert taken_now(later) == [(delivery.id, 1)]
    assert taken_now(later) == []  # the next sweep does not publish it again
    assert rt.outcomes.webhooks.deliverer.attempt(delivery.id, 0) == "skipped"  # a stale message does nothing
    assert rt.outcomes.webhooks.deliverer.attempt(delivery.id, 1) == "succeeded"


def test_410_disables_the_endpoint(rt: Runtime, receivers: list[Any]) -> None:
    tenant_id, _ = new_tenant_key(rt.engine)
    secret = new_secret()
    receiver = receiver_for(receivers, secret, script=[410])
    endpoint = add_endpoint(rt, tenant_id, receiver.url, secret=secret)
    rt.outcomes.emit(job_event(tenant_id))

    assert attempt(rt, only_delivery(rt, tenant_id)) == "failed"

    with Session(rt.engine) as session:
        shown = session.get(WebhookEndpoint, endpoint.id)
    assert shown is not None and shown.enabled is False and "410" in (shown.disabled_reason or "")
    rt.outcomes.emit(job_event(tenant_id))
    assert len(rows(rt, tenant_id)) == 1  # a disabled endpoint gets no new deliveries


def scripted_app(status: int, headers: dict[str, str]) -> Any:
    """A receiver app that answers every delivery with ``status`` and ``headers``."""
    from fastapi import FastAPI, Response

    app = FastAPI()

    @app.post("/hooks")
    def answer() -> Response:
        return Response(status_code=status, headers=headers)

    return app


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured_on_429_and_503(rt: Runtime, receivers: list[Any], status: int) -> None:
    tenant_id, _ = new_tenant_key(rt.engine)
    busy = WebhookReceiverServer([new_secret()])
    busy.app = lambda: scripted_app(status, {"Retry-After": "7"})  # type: ignore[method-assign]
    receivers.append(busy.start())
    add_endpoint(rt, tenant_id, busy.url)
    rt.outcomes.emit(job_event(tenant_id))

    before = utcnow()
    assert attempt(rt, only_delivery(rt, tenant_id)) == "retrying"
    after, retry_after = utcnow(), timedelta(seconds=7)

    due = only_delivery(rt, tenant_id).next_attempt_at
    assert due is not None and before + retry_after <= due <= after + retry_after  # not the schedule's 1 s


def test_during_rotation_both_secrets_sign(rt: Runtime, receivers: list[Any]) -> None:
    tenant_id, _ = new_tenant_key(rt.engine)
    old, new = new_secret(), new_secret()
    receiver = receiver_for(receivers, old, new)
    add_endpoint(
        rt, tenant_id, receiver.url, secret=new, previous_secret=old,
        previous_secret_expires_at=utcnow() + timedelta(hours=1),
    )  # fmt: skip
    rt.outcomes.emit(job_event(tenant_id))
    attempt(rt, only_delivery(rt, tenant_id))

    [arrival] = receiver.arrivals
    assert arrival.verified_with == [0, 1] and len(arrival.headers["webhook-signature"].split(" ")) == 2


def test_after_the_grace_period_only_the_new_secret_signs(rt: Runtime, receivers: list[Any]) -> None:
    tenant_id, _ = new_tenant_key(rt.engine)
    old, new = new_secret(), new_secret()
    receiver = receiver_for(receivers, old, new)
    add_endpoint(
        rt, tenant_id, receiver.url, secret=new, previous_secret=old,
        previous_secret_expires_at=utcnow() - timedelta(seconds=1),
    )  # fmt: skip
    rt.outcomes.emit(job_event(tenant_id))
    attempt(rt, only_delivery(rt, tenant_id))
    assert receiver.arrivals[0].verified_with == [1]


def test_a_callback_url_is_signed_with_the_tenant_default_secret(rt: Runtime, receivers: list[Any]) -> None:
    tenant_id, _ = new_tenant_key(rt.engine)
    default = tenant_secret(rt.engine, tenant_id).secret
    receiver = receiver_for(receivers, default)

    rt.outcomes.emit(job_event(tenant_id, callback_url=receiver.url))

    delivery = only_delivery(rt, tenant_id)
    assert delivery.endpoint_id is None and delivery.url == receiver.url
    assert attempt(rt, delivery) == "succeeded" and receiver.arrivals[0].verified_with == [0]
    assert tenant_secret(rt.engine, tenant_id).secret == default  # created once, then reused


def test_no_endpoint_and_no_callback_url_inserts_nothing(rt: Runtime) -> None:
    tenant_id, _ = new_tenant_key(rt.engine)
    rt.outcomes.emit(job_event(tenant_id))
    rt.outcomes.emit(Event(tenant_id, "batch.completed", {"id": "batch_1", "object": "batch"}))
    assert rows(rt, tenant_id) == []
    assert rt.redis.get(rt.keys.webhook_endpoints(tenant_id)) == b"[]"  # the next event is one GET


def test_endpoints_get_only_the_event_types_they_want(rt: Runtime) -> None:
    tenant_id, _ = new_tenant_key(rt.engine)
    add_endpoint(rt, tenant_id, "http://127.0.0.1:9/a", event_types=["job.failed"])
    add_endpoint(rt, tenant_id, "http://127.0.0.1:9/b", event_types=["job.failed", "job.succeeded"])
    rt.outcomes.emit(job_event(tenant_id, "succeeded"))
    assert [row.url for row in rows(rt, tenant_id)] == ["http://127.0.0.1:9/b"]


def test_a_large_object_is_sent_by_reference(tmp_path: Path, redis_url: str, rt: Runtime) -> None:
    tenant_id, _ = new_tenant_key(rt.engine)
    add_endpoint(rt, tenant_id, "http://127.0.0.1:9/a")
    small = rt.settings.model_copy(
        update={"webhooks": rt.settings.webhooks.model_copy(update={"by_reference_bytes": 200})}
    )
    Outcomes(small, rt.engine, rt.redis, rt.keys, rt.celery).emit(
        job_event(tenant_id, result={"text": "x" * 500})
    )

    data = json.loads(only_delivery(rt, tenant_id).body)["data"]
    assert data["by_reference"] is True and data["url"] == f"{small.api_url}/v1/jobs/job_1"
    assert "result" not in data and data["status"] == "succeeded"


def test_an_endpoint_failing_for_the_configured_period_is_disabled(rt: Runtime, receivers: list[Any]) -> None:
    tenant_id, _ = new_tenant_key(rt.engine)
    secret = new_secret()
    receiver = receiver_for(receivers, secret, script=[500, 500])
    five_days = rt.settings.webhooks.disable_after_failing_s
    endpoint = add_endpoint(
        rt, tenant_id, receiver.url, secret=secret, failing_since=utcnow() - timedelta(days=4)
    )
    rt.outcomes.emit(job_event(tenant_id))
    attempt(rt, only_delivery(rt, tenant_id))
    with Session(rt.engine) as session:
        assert session.get(WebhookEndpoint, endpoint.id).enabled is True  # type: ignore[union-attr]
        session.exec(  # type: ignore[call-overload]
            update(WebhookEndpoint)
            .where(col(WebhookEndpoint.id) == endpoint.id)
            .values(failing_since=utcnow() - timedelta(seconds=five_days + 1))
        )
        session.commit()

    attempt(rt, only_delivery(rt, tenant_id))

    with Session(rt.engine) as session:
        shown = session.get(WebhookEndpoint, endpoint.id)
    assert shown is not None and shown.enabled is False and shown.disabled_reason == "failing for 5 days"


def strict(rt: Runtime, resolver: Any = None) -> Deliverer:
    settings: Settings = rt.settings.model_copy(
        update={"webhooks": WebhookSettings.model_validate({"retry_schedule_s": SCHEDULE})}
    )
    client = guarded_client(settings.webhooks, resolver) if resolver else guarded_client(settings.webhooks)
    return Deliverer(settings, rt.engine, rt.redis, rt.keys, client)


def test_the_ssrf_guard_refuses_at_send_time_and_nothing_arrives(rt: Runtime, receivers: list[Any]) -> None:
    tenant_id, _ = new_tenant_key(rt.engine)
    canary = receiver_for(receivers, new_secret())
    port = canary.port
    # Registered while allowed (or before DNS changed); each is refused when sent.
    urls = [
        f"http://{host}:{port}/hooks" for host in ("127.0.0.1", "2130706433", "0x7f.1", "[::ffff:127.0.0.1]")
    ]
    urls.append(f"http://internal.example:{port}/hooks")  # resolves to loopback through the stub
    for url in urls:
        add_endpoint(rt, tenant_id, url)
    rt.outcomes.emit(job_event(tenant_id))
    deliverer = strict(rt, resolver=lambda host, _port: ["127.0.0.1"])

    outcomes = [attempt(rt, delivery, deliverer) for delivery in rows(rt, tenant_id)]

    assert outcomes == ["failed"] * len(urls)
    assert all((row.last_error or "").startswith("unsafe_callback_url") for row in rows(rt, tenant_id))
    assert canary.arrivals == []


def test_a_redirect_is_a_failed_attempt_and_not_followed(rt: Runtime, receivers: list[Any]) -> None:
    tenant_id, _ = new_tenant_key(rt.engine)
    canary = receiver_for(receivers, new_secret())
    redirector = WebhookReceiverServer([new_secret()])
    redirector.app = lambda: scripted_app(302, {"Location": canary.url})  # type: ignore[method-assign]
    receivers.append(redirector.start())
    add_endpoint(rt, tenant_id, redirector.url)
    rt.outcomes.emit(job_event(tenant_id))

    assert attempt(rt, only_delivery(rt, tenant_id)) == "retrying"

    row = only_delivery(rt, tenant_id)
    assert row.last_status_code == 302 and "not followed" in (row.last_error or "")
    assert canary.arrivals == []


def test_a_duplicate_insert_of_one_event_is_a_no_op(rt: Runtime) -> None:
    tenant_id, _ = new_tenant_key(rt.engine)
    add_endpoint(rt, tenant_id, "http://127.0.0.1:9/a")
    event = job_event(tenant_id)
    rt.outcomes.emit(event)
    rt.outcomes.emit(event)
    with Session(rt.engine) as session:
        count = session.exec(
            select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.tenant_id == tenant_id)
        ).one()
    assert count == 1


def in_process(rt: Runtime, **hooks: Any) -> Any:
    webhooks = rt.settings.webhooks.model_copy(update={"first_attempt": "in_process", **hooks})
    settings = rt.settings.model_copy(update={"webhooks": webhooks})
    return Outcomes(settings, rt.engine, rt.redis, rt.keys, rt.celery)


def test_in_process_the_announcing_process_sends_the_first_attempt(rt: Runtime, receivers: list[Any]) -> None:
    tenant_id, _ = new_tenant_key(rt.engine)
    secret = new_secret()
    receiver = receiver_for(receivers, secret)
    add_endpoint(rt, tenant_id, receiver.url, secret=secret)

    in_process(rt).emit(job_event(tenant_id))

    [arrival] = receiver.wait_for(1, timeout=10)
    assert arrival.verified_with == [0] and rt.redis.llen(rt.keys.webhook_queue) == 0  # no queue hop
    deadline = utcnow() + timedelta(seconds=10)
    while only_delivery(rt, tenant_id).status != "succeeded" and utcnow() < deadline:
        time.sleep(0.02)
    assert only_delivery(rt, tenant_id).attempts == 1


def test_in_process_a_full_backlog_sends_first_attempts_through_the_queue(rt: Runtime) -> None:
    tenant_id, _ = new_tenant_key(rt.engine)
    add_endpoint(rt, tenant_id, "http://127.0.0.1:9/a")
    outcomes = in_process(rt, sender_backlog=1)
    outcomes.webhooks.sender.waiting = 1  # the one sender slot is taken

    outcomes.emit(job_event(tenant_id))

    assert rt.redis.llen(rt.keys.webhook_queue) == 1 and only_delivery(rt, tenant_id).attempts == 0
