"""End to end: a known query is precomputed on spare capacity and its answer serves the live
request from the API's fast path; suggestions list the requests that keep missing."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

from e2e_stack import Stack

from schemas.tables import utcnow
from workers.celery_app import create_celery
from workers.precompute import run_due
from workers.runtime import Runtime

CACHED = "cached"


def test_a_precomputed_answer_serves_the_live_request(stack: Stack) -> None:
    key = stack.keys["a"]
    request = {"messages": [{"role": "user", "content": f"Opening hours of store {uuid.uuid4().hex[:6]}?"}]}
    now = utcnow()
    window = {  # open now, in UTC (it may wrap midnight)
        "window_start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "window_end": (now + timedelta(hours=1)).strftime("%H:%M"),
        "timezone": "UTC",
    }
    created = stack.post(
        "/v1/known-queries", key, json={"tier": CACHED, "request": request, "every_s": 3600, **window}
    )
    assert created.status_code == 201, created.text
    kq = created.json()
    [worker] = stack.start_workers("worker-kq", 1, [CACHED])
    rt = Runtime(settings=stack.settings, celery=create_celery(stack.settings))
    try:
        run_due(rt)  # what beat's `switchyard.precompute` does every scan_interval_s
        job_id = _last_job(stack, key, kq["id"])  # this scan's run, or beat's if it came first
        precomputed = stack.wait_final(job_id)
    finally:
        stack.processes.stop(worker)
        rt.engine.dispose()
        rt.redis.close()

    assert precomputed["status"] == "succeeded", precomputed
    assert precomputed["priority"] == "precompute" and precomputed["metadata"] == {"known_query": kq["id"]}
    assert precomputed["cache"]["key"] == kq["cache_key"] and precomputed["cost_usd"] > 0
    # No worker is running now: only the cache can answer.
    live = stack.post("/v1/jobs", key, json={"tier": CACHED, "request": request})
    assert live.status_code == 200, live.text
    job = live.json()
    assert job["status"] == "succeeded" and job["cost_usd"] == 0 and job["priority"] == "live"
    assert job["cache"]["hit"] == "exact" and job["cache"]["source_job"] == precomputed["id"]
    assert job["result"]["choices"] == precomputed["result"]["choices"]
    shown = stack.get(f"/v1/known-queries/{kq['id']}", key).json()
    assert shown["last_job_id"] == precomputed["id"] and shown["last_run_at"] is not None
    # Other tenants neither see the known query nor get its answer.
    assert stack.get(f"/v1/known-queries/{kq['id']}", stack.keys["b"]).status_code == 404


def test_suggestions_list_a_request_that_missed_twice(stack: Stack) -> None:
    key = stack.keys["a"]
    request = {"messages": [{"role": "user", "content": f"Shipping to Norway? {uuid.uuid4().hex[:6]}"}]}
    jobs = [stack.post("/v1/jobs", key, json={"tier": CACHED, "request": request}).json() for _ in range(2)]
    try:
        assert [job["cache"]["hit"] for job in jobs] == [None, None]

        found = stack.get("/v1/known-queries/suggestions", key, params={"hours": 1, "limit": 100})

        assert found.status_code == 200, found.text
        [row] = [row for row in found.json()["data"] if row["key"] == jobs[0]["cache"]["key"]]
        assert row["misses"] == 2 and row["tier"] == CACHED and row["request"] == request
        assert row["known_query_id"] is None
        registered = stack.post(
            "/v1/known-queries",
            key,
            json={"tier": row["tier"], "request": row["request"], "cron": "0 3 * * *"},
        )
        assert registered.status_code == 201, registered.text
        assert registered.json()["cache_key"] == row["key"]
        again = stack.get("/v1/known-queries/suggestions", key, params={"hours": 1, "limit": 100}).json()
        assert [r["known_query_id"] for r in again["data"] if r["key"] == row["key"]] == [
            registered.json()["id"]
        ]
    finally:
        for job in jobs:  # no worker serves the tier now; leave nothing queued for later tests
            stack.post(f"/v1/jobs/{job['id']}/cancel", key)


def _last_job(stack: Stack, key: str, query_id: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        shown: dict[str, Any] = stack.get(f"/v1/known-queries/{query_id}", key).json()
        if shown["last_job_id"] or time.monotonic() > deadline:
            assert shown["last_job_id"], shown
            return str(shown["last_job_id"])
        time.sleep(0.2)
