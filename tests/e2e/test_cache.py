"""End to end: the exact cache answers from the API with no worker alive."""

from __future__ import annotations

import uuid

from e2e_stack import Stack

CACHED = "cached"


def test_an_identical_job_is_answered_with_no_worker_running(stack: Stack) -> None:
    [worker] = stack.start_workers("worker-cache", 1, [CACHED])
    question = f"What is the boiling point of water at sea level? ({uuid.uuid4().hex[:6]})"
    try:
        first = stack.wait_final(stack.submit(CACHED, question, cache="exact")["id"])
    finally:
        stack.processes.stop(worker)
    assert first["status"] == "succeeded" and first["cost_usd"] > 0

    body = {"tier": CACHED, "request": {"messages": [{"role": "user", "content": question}]}}
    hit = stack.post("/v1/jobs", stack.keys["a"], json=body)  # the tier's default mode: exact

    assert hit.status_code == 200, hit.text
    job = hit.json()
    assert job["status"] == "succeeded" and job["cost_usd"] == 0
    assert job["cache"]["hit"] == "exact" and job["cache"]["source_job"] == first["id"]
    assert job["result"]["choices"] == first["result"]["choices"]
    # Another tenant asking the same gets no hit: its job waits for a worker instead.
    other = stack.post("/v1/jobs", stack.keys["b"], json=body)
    assert other.status_code == 202 and other.json()["cache"]["hit"] is None
    stack.post(f"/v1/jobs/{other.json()['id']}/cancel", stack.keys["b"])


def test_a_paraphrase_is_answered_by_the_semantic_cache_without_a_call(stack: Stack) -> None:
    [worker] = stack.start_workers("worker-semantic", 1, [CACHED])
    topic = uuid.uuid4().hex[:6]
    try:
        first = stack.wait_final(
            stack.submit(CACHED, f"How do I reset my password for {topic}?", cache="semantic")["id"]
        )
        calls = stack.emulator("GET", "/emulator/stats")["requests"]
        second = stack.submit(CACHED, f"What's the way to reset my password for {topic}?", cache="semantic")
        done = stack.wait_final(second["id"], timeout=90)
        changed = stack.wait_final(
            stack.submit(CACHED, f"How do I delete my account for {topic}?", cache="semantic")["id"]
        )
    finally:
        stack.processes.stop(worker)

    assert done["status"] == "succeeded" and done["cost_usd"] == 0 and done["attempts"] == 0
    assert done["cache"]["hit"] == "semantic" and done["cache"]["source_job"] == first["id"]
    assert 0.8 <= done["cache"]["similarity"] <= 1.0
    assert done["result"]["choices"] == first["result"]["choices"]
    # The hit called no provider; the different question did.
    assert changed["cache"]["hit"] is None and changed["cost_usd"] > 0
    assert stack.emulator("GET", "/emulator/stats")["requests"] == calls + 1
