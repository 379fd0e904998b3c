"""End to end: a kill switch stops four real workers' provider calls within a second; the jobs
it holds run once it is lifted, none lost; ``fail_queued`` fails the waiting ones.

The ``killable`` tier's model, emu-kill, answers after 500 ms at the emulator, so calls are
in flight when the switch is set. Only this module's four workers serve the tier.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from e2e_stack import Stack
from sqlmodel import Session

from api.keys import create_platform_key
from workers.db import make_engine

KILLABLE, MODEL = "killable", "emu-kill"
LATENCY_MS = 500
JOBS = 80  # 10 s of calls for four workers: a backlog is still queued when the switch is set
SWITCHES = "/v1/admin/kill-switches"


@pytest.fixture(scope="module")
def workers(stack: Stack) -> Iterator[Stack]:
    """Four single-process workers for the killable tier, warmed up, and a platform admin key."""
    engine = make_engine(stack.settings)
    with Session(engine) as session:
        stack.keys["platform"] = create_platform_key(session, "kill switch e2e")
        session.commit()
    engine.dispose()
    with stack.warm_workers("worker-kill", 4, [KILLABLE], warm_tier=KILLABLE):
        yield stack


@pytest.fixture
def slow(workers: Stack, e2e: Stack) -> Stack:
    """emu-kill answering after ``LATENCY_MS`` (the e2e fixture clears it afterwards)."""
    e2e.emulator("POST", "/emulator/faults", json={"model": MODEL, "latency_ms": LATENCY_MS})
    return e2e


def calls(stack: Stack) -> int:
    """Requests emu-kill received so far (counted on arrival, before the latency)."""
    return int(stack.emulator("GET", "/emulator/stats")["by_model"].get(MODEL, 0))


def submit_many(stack: Stack, count: int, label: str) -> list[str]:
    with ThreadPoolExecutor(8) as pool:
        return [job["id"] for job in pool.map(lambda i: stack.submit(KILLABLE, f"{label} {i}"), range(count))]


def wait_all(stack: Stack, job_ids: list[str]) -> list[dict[str, Any]]:
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda job_id: stack.wait_final(job_id, timeout=60), job_ids))


def set_switch(stack: Stack, **body: Any) -> str:
    answer = stack.post(SWITCHES, stack.keys["platform"], json=body)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def lift(stack: Stack, switch_id: str) -> None:
    headers = {"Authorization": f"Bearer {stack.keys['platform']}"}
    answer = httpx.delete(f"{stack.api_url}{SWITCHES}/{switch_id}", headers=headers, timeout=30)
    assert answer.status_code == 200 and answer.json()["active"] is False, answer.text


def growth_after(stack: Stack, start: float, watch_s: float) -> list[tuple[float, int]]:
    """(seconds since ``start``, calls) each time the call count moved, watched for ``watch_s``."""
    changes, last = [], calls(stack)
    while time.monotonic() - start < watch_s:
        now = calls(stack)
        if now != last:
            changes.append((time.monotonic() - start, now))
            last = now
        time.sleep(0.02)
    return changes


def test_a_switch_stops_new_calls_within_a_second_and_lifting_it_runs_every_held_job(slow: Stack) -> None:
    before = calls(slow)
    job_ids = submit_many(slow, JOBS, "flowing")
    while calls(slow) < before + 8:  # the four workers are calling
        time.sleep(0.02)

    sent_at, at_sent = time.monotonic(), calls(slow)
    switch_id = set_switch(slow, scope="model", value=MODEL, reason="e2e: runaway spend")
    try:
        set_at, at_set = time.monotonic(), calls(slow)
        changes = growth_after(slow, set_at, watch_s=3.0)
        stopped_at = calls(slow)
        held = [slow.get(f"/v1/jobs/{job_id}", slow.keys["a"]).json()["status"] for job_id in job_ids]
    finally:
        lift(slow, switch_id)
    last_arrival = changes[-1][0] if changes else 0.0
    print(
        f"kill_switch post_s={set_at - sent_at:.3f} calls_during_post={at_set - at_sent} "
        f"calls_after_post={stopped_at - at_set} last_arrival_after_post_s={last_arrival:.3f}"
    )

    # Only calls already past the gate on the four workers (one each at most) may still arrive,
    # and none after the first second.
    assert stopped_at - at_sent <= 4, changes
    assert all(seconds < 1.0 for seconds, _ in changes), changes
    assert stopped_at < before + JOBS, "the jobs ran out before the switch: nothing was held"
    assert "failed" not in held and held.count("succeeded") < JOBS  # the rest wait, not fail

    jobs = wait_all(slow, job_ids)  # lifted above

    assert [job["status"] for job in jobs] == ["succeeded"] * JOBS  # nothing lost
    assert calls(slow) >= before + JOBS
    assert max(job["attempts"] for job in jobs) == 1  # waiting used up no attempt


def test_a_switch_that_fails_queued_jobs_fails_the_waiting_ones_with_kill_switch(slow: Stack) -> None:
    holding = set_switch(slow, scope="tier", value=KILLABLE)
    before = calls(slow)
    job_ids = submit_many(slow, 12, "held")
    time.sleep(1.5)  # each has been taken, stopped and handed back at least once
    assert {slow.get(f"/v1/jobs/{i}", slow.keys["a"]).json()["status"] for i in job_ids} <= {
        "queued",
        "running",
    }

    failing = set_switch(slow, scope="model", value=MODEL, fail_queued=True)
    try:
        jobs = wait_all(slow, job_ids)
    finally:
        lift(slow, holding)
        lift(slow, failing)

    assert [(job["status"], job["error"]["code"]) for job in jobs] == [("failed", "kill_switch")] * 12
    assert calls(slow) == before  # no call was made for any of them
