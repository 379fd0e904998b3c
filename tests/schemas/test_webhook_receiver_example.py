"""The example receiver (examples/webhook_receiver.py) handles a signed delivery once, refuses a
forged one, and lets a retry through after its handler failed."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from examples.webhook_receiver import create_app
from schemas.tables import utcnow
from workers.webhooks.signing import new_secret, signed_headers

BODY = json.dumps(
    {"type": "job.succeeded", "timestamp": "now", "data": {"id": "job_1", "status": "succeeded"}}
)


def test_the_example_receiver_handles_each_event_once() -> None:
    secret, handled = new_secret(), []
    failures = [RuntimeError("database down")]

    def handle(event: dict[str, Any]) -> None:
        if failures:
            raise failures.pop()
        handled.append(event["data"]["id"])

    client = TestClient(create_app([secret], handle=handle))
    headers = signed_headers("evt_1", BODY, [secret], utcnow())

    assert client.post("/switchyard", content=BODY, headers=headers).status_code == 500  # handler failed
    assert client.post("/switchyard", content=BODY, headers=headers).status_code == 204  # the retry
    assert client.post("/switchyard", content=BODY, headers=headers).status_code == 204  # a duplicate
    assert handled == ["job_1"]
    forged = signed_headers("evt_2", BODY, [new_secret()], utcnow())
    refused = client.post("/switchyard", content=BODY, headers=forged)
    assert refused.status_code == 400 and "signature" in refused.text and handled == ["job_1"]
