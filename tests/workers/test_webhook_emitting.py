"""Webhook deliveries as events create them, on SQLite and PostgreSQL with real Redis: which
endpoints get one, how each is signed (secret rotation, the tenant's default secret for
callback URLs), large objects by reference, and first attempts sent by the announcing process."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests_support import new_tenant_key
from webhook_delivery_support import (
    add_endpoint,
    attempt,
    in_process,
    job_event,
    only_delivery,
    receiver_for,
    rows,
)
from webhook_delivery_support import rt as rt  # fixture

from schemas.tables import utcnow
from workers.event import Event
from workers.outcomes import Outcomes
from workers.runtime import Runtime
from workers.webhooks.endpoints import tenant_secret
from workers.webhooks.signing import new_secret


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
