"""Webhook deliveries in process, on SQLite and PostgreSQL with real Redis and a real receiver
(uvicorn on loopback, checking signatures with the ``standardwebhooks`` package): emitting,
signing, retries on a compressed schedule, the dead letter and redelivery, 410, Retry-After,
secret rotation, callback URLs and the SSRF guard at send time."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, update
from sqlmodel import Session, col, select
from tests_support import new_tenant_key
from webhook_delivery_support import (
    SCHEDULE,
    add_endpoint,
    attempt,
    job_event,
    only_delivery,
    receiver_for,
    rows,
    scripted_app,
    strict,
)
from webhook_delivery_support import rt as rt  # fixture
from webhook_receiver import WebhookReceiverServer

from schemas.tables import WebhookDelivery, WebhookEndpoint, utcnow
from workers.runtime import Runtime
from workers.webhooks import deliveries
from workers.webhooks.signing import new_secret


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
