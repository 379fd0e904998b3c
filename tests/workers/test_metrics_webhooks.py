"""Webhook delivery attempts are counted by event type and outcome: retrying, then the dead letter."""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY
from tests_support import new_tenant_key
from webhook_delivery_support import SCHEDULE, add_endpoint, attempt, job_event, only_delivery, receiver_for
from webhook_delivery_support import rt as rt  # fixture

from workers.runtime import Runtime
from workers.webhooks.signing import new_secret


def delivered(outcome: str) -> float:
    labels = {"event_type": "job.failed", "outcome": outcome}
    return REGISTRY.get_sample_value("switchyard_webhook_deliveries_total", labels) or 0.0


def test_each_attempt_counts_its_outcome_and_the_last_one_a_dead_letter(
    rt: Runtime, receivers: list[Any]
) -> None:
    tenant_id, _ = new_tenant_key(rt.engine)
    secret = new_secret()
    receiver = receiver_for(receivers, secret, script=[500] * len(SCHEDULE))
    add_endpoint(rt, tenant_id, receiver.url, secret=secret)
    rt.outcomes.emit(job_event(tenant_id, "failed"))
    delivery = only_delivery(rt, tenant_id)
    before = {outcome: delivered(outcome) for outcome in ("retrying", "failed", "succeeded")}

    outcomes = [attempt(rt, delivery) for _ in SCHEDULE]

    assert outcomes[-1] == "failed"
    assert delivered("retrying") == before["retrying"] + len(SCHEDULE) - 1
    assert delivered("failed") == before["failed"] + 1
    assert attempt(rt, delivery) == "skipped"  # a skipped attempt sent nothing and counts nothing
    assert delivered("succeeded") == before["succeeded"]
