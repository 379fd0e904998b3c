"""End to end: signed webhooks from real workers, the webhook worker and beat's retry sweep to
a real receiver (uvicorn on loopback, checking signatures with the ``standardwebhooks``
package). The stack runs a compressed schedule: five attempts, the fourth 2 s after the third."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import pytest
from e2e_stack import Stack
from tests_support import new_tenant_key
from webhook_receiver import WebhookReceiverServer

from workers.db import make_engine


@pytest.fixture
def tenant(stack: Stack) -> str:
    """A tenant of its own, so other tests' jobs never reach these endpoints."""
    engine = make_engine(stack.settings)
    try:
        return new_tenant_key(engine, {"submit", "read", "admin"})[1]
    finally:
        engine.dispose()


def register(stack: Stack, key: str, receiver: WebhookReceiverServer, **fields: Any) -> dict[str, Any]:
    response = stack.post("/v1/webhook-endpoints", key, json={"url": receiver.url, **fields})
    assert response.status_code == 201, response.text
    endpoint = dict(response.json())
    receiver.secrets.append(endpoint["secret"])
    return endpoint


def only_delivery(stack: Stack, key: str, until: Any, timeout: float = 30.0) -> dict[str, Any]:
    """The tenant's one delivery, once ``until(delivery)`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        found = stack.get("/v1/webhook-deliveries", key).json()["data"]
        if len(found) == 1 and until(found[0]):
            return dict(found[0])
        assert time.monotonic() < deadline, found
        time.sleep(0.05)


def test_a_finished_job_arrives_signed_at_a_real_receiver(
    stack: Stack, tenant: str, receivers: list[Any]
) -> None:
    receiver = WebhookReceiverServer([]).start()
    receivers.append(receiver)
    register(stack, tenant, receiver, event_types=["job.succeeded"])

    job = stack.wait_final(stack.submit("small", "Webhook me", key=tenant)["id"], key=tenant)

    [arrival] = receiver.wait_for(1)
    assert job["status"] == "succeeded" and arrival.verified_with == [0]
    body = json.loads(arrival.body)
    assert body["type"] == "job.succeeded" and body["data"]["id"] == job["id"]
    assert body["data"]["result"] == job["result"]
    delivery = only_delivery(stack, tenant, lambda d: d["status"] == "succeeded")
    assert delivery["event_id"] == arrival.headers["webhook-id"] and delivery["attempts"] == 1
    finished = datetime.fromisoformat(job["finished_at"]).timestamp()
    assert arrival.received_at - finished < 5  # sent at once, not by the retry sweep


def test_down_for_three_attempts_then_the_fourth_arrives_once(
    stack: Stack, tenant: str, receivers: list[Any]
) -> None:
    receiver = WebhookReceiverServer([])  # registered, but nothing listens on its port yet
    receivers.append(receiver)
    register(stack, tenant, receiver)

    stack.wait_final(stack.submit("small", "Are you there?", key=tenant)["id"], key=tenant)
    failing = only_delivery(stack, tenant, lambda d: d["attempts"] == 3)
    assert failing["status"] == "pending" and failing["last_status_code"] is None
    assert "Connect" in (failing["last_error"] or "")
    receiver.start()

    [arrival] = receiver.wait_for(1)
    delivered = only_delivery(stack, tenant, lambda d: d["status"] == "succeeded")
    assert delivered["attempts"] == 4 and arrival.headers["webhook-id"] == failing["event_id"]
    # A redelivery has the same webhook-id; the receiver's dedupe processes the event once.
    again = stack.post(f"/v1/webhook-deliveries/{delivered['id']}/redeliver", tenant)
    assert again.status_code == 200, again.text
    arrivals = receiver.wait_for(2)
    assert {a.headers["webhook-id"] for a in arrivals} == {failing["event_id"]}
    assert len(receiver.processed) == 1


def test_the_dead_letter_then_redelivery(stack: Stack, tenant: str, receivers: list[Any]) -> None:
    receiver = WebhookReceiverServer([], script=[500] * 5).start()
    receivers.append(receiver)
    register(stack, tenant, receiver)

    stack.wait_final(stack.submit("small", "Fail me five times", key=tenant)["id"], key=tenant)
    dead = only_delivery(stack, tenant, lambda d: d["status"] == "failed")

    assert dead["attempts"] == 5 and dead["last_status_code"] == 500
    listed = stack.get("/v1/webhook-deliveries", tenant, params={"status": "failed"}).json()["data"]
    assert [d["id"] for d in listed] == [dead["id"]]
    assert stack.post(f"/v1/webhook-deliveries/{dead['id']}/redeliver", tenant).status_code == 200
    delivered = only_delivery(stack, tenant, lambda d: d["status"] == "succeeded")
    assert delivered["attempts"] == 1 and [a.answered for a in receiver.wait_for(6)] == [500] * 5 + [200]


def test_410_disables_the_endpoint(stack: Stack, tenant: str, receivers: list[Any]) -> None:
    receiver = WebhookReceiverServer([], script=[410]).start()
    receivers.append(receiver)
    endpoint = register(stack, tenant, receiver)

    stack.wait_final(stack.submit("small", "Gone", key=tenant)["id"], key=tenant)
    only_delivery(stack, tenant, lambda d: d["status"] == "failed")

    shown = stack.get(f"/v1/webhook-endpoints/{endpoint['id']}", tenant).json()
    assert shown["enabled"] is False and "410" in shown["disabled_reason"]


def test_a_callback_url_is_signed_with_the_tenant_default_secret(
    stack: Stack, tenant: str, receivers: list[Any]
) -> None:
    secret = stack.get("/v1/webhook-secret", tenant).json()["secret"]
    receiver = WebhookReceiverServer([secret]).start()
    receivers.append(receiver)
    body = {
        "tier": "small",
        "cache": "off",
        "callback_url": receiver.url,
        "request": {"messages": [{"role": "user", "content": "Call me back"}]},
    }
    job = stack.post("/v1/jobs", tenant, json=body).json()

    [arrival] = receiver.wait_for(1)

    assert arrival.verified_with == [0] and json.loads(arrival.body)["data"]["id"] == job["id"]
