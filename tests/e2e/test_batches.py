"""End to end: batches through the real API, workers and emulator, driven by the `openai` SDK."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import openai
import pytest
from e2e_stack import Stack
from sqlmodel import Session, col, select

from schemas.tables import Job, Usage
from workers.db import make_engine

FINAL = {"completed", "failed", "cancelled", "expired"}


def sdk(stack: Stack) -> openai.OpenAI:
    """The official client, pointed at Switchyard with a Switchyard key."""
    return openai.OpenAI(base_url=f"{stack.api_url}/v1", api_key=stack.keys["a"], max_retries=0, timeout=60)


def input_file(tier: str, count: int, tag: str) -> bytes:
    lines = [
        {
            "custom_id": f"{tag}-{index:03d}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": tier,
                "messages": [{"role": "user", "content": f"Summarise doc {index} ({tag})."}],
            },
        }
        for index in range(count)
    ]
    return "\n".join(json.dumps(line) for line in lines).encode()


def wait_for(client: openai.OpenAI, batch_id: str, statuses: set[str], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        batch = client.batches.retrieve(batch_id)
        if batch.status in statuses or time.monotonic() > deadline:
            return batch
        time.sleep(0.5)


def test_200_line_batch_runs_end_to_end_with_the_openai_sdk(e2e: Stack) -> None:
    client = sdk(e2e)
    tag = uuid.uuid4().hex[:8]
    uploaded = client.files.create(file=("docs.jsonl", input_file("small", 200, tag)), purpose="batch")
    assert uploaded.purpose == "batch" and uploaded.id.startswith("file-")
    created = client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"run": tag},
    )
    assert created.status == "in_progress" and created.request_counts is not None
    assert created.request_counts.total == 200 and created.metadata == {"run": tag}
    done = wait_for(client, created.id, FINAL, timeout=240)
    assert done.status == "completed", done
    assert done.request_counts is not None
    assert (done.request_counts.completed, done.request_counts.failed) == (200, 0)
    assert done.output_file_id is not None and done.error_file_id is None
    lines = [json.loads(line) for line in client.files.content(done.output_file_id).text.splitlines()]
    assert [line["custom_id"] for line in lines] == [f"{tag}-{index:03d}" for index in range(200)]
    for line in lines:
        assert set(line) == {"id", "custom_id", "response", "error"} and line["error"] is None
        assert line["response"]["status_code"] == 200 and line["response"]["request_id"].startswith("job_")
        body = line["response"]["body"]
        assert body["object"] == "chat.completion" and body["choices"][0]["message"]["content"]
    assert client.batches.list(limit=1).data[0].id == created.id
    extras = e2e.get(f"/v1/batches/{created.id}", e2e.keys["a"]).json()
    assert extras["progress"] == 1.0 and extras["counts"]["succeeded"] == 200 and extras["cost_usd"] > 0


def test_bad_jsonl_is_rejected_with_line_numbers_through_the_sdk(e2e: Stack) -> None:
    client = sdk(e2e)
    lines = input_file("small", 3, "bad").decode().splitlines()
    lines.insert(1, '{"custom_id": "broken",')  # line 2
    lines.append(lines[0])  # line 5 repeats custom_id bad-000
    uploaded = client.files.create(file=("bad.jsonl", "\n".join(lines).encode()), purpose="batch")
    with pytest.raises(openai.UnprocessableEntityError) as raised:
        client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    error = raised.value.response.json()["error"]
    assert error["code"] == "invalid_batch_file"
    assert [(e["line"], e["code"]) for e in error["errors"]] == [
        (2, "invalid_json"),
        (5, "duplicate_custom_id"),
    ]


def test_cancel_in_the_middle_counts_add_up_and_no_queued_job_runs_after(e2e: Stack) -> None:
    e2e.emulator("POST", "/emulator/faults", json={"model": "emu-slow", "responses": [], "latency_ms": 400})
    before = e2e.emulator("GET", "/emulator/stats")["by_model"].get("emu-slow", 0)
    client = sdk(e2e)
    response = httpx.post(
        f"{e2e.api_url}/v1/batches",
        content=input_file("slow", 40, uuid.uuid4().hex[:8]),
        params={"tier": "slow"},
        headers={"Authorization": f"Bearer {e2e.keys['a']}", "Content-Type": "application/jsonl"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    batch_id = response.json()["id"]
    _wait_until_some_succeeded(e2e, batch_id, 2)
    cancelling = client.batches.cancel(batch_id)
    assert cancelling.status in ("cancelling", "cancelled")
    done = wait_for(client, batch_id, FINAL, timeout=60)
    assert done.status == "cancelled" and done.cancelled_at is not None
    counts = e2e.get(f"/v1/batches/{batch_id}", e2e.keys["a"]).json()["counts"]
    assert counts["queued"] == counts["running"] == 0
    assert counts["succeeded"] + counts["failed"] + counts["canceled"] == 40
    assert counts["succeeded"] >= 2 and counts["canceled"] > 0
    time.sleep(2)  # any message of a canceled job still in the queue is taken and dropped by now
    ran, canceled, usage_rows = _batch_rows(e2e, batch_id)
    assert not canceled & set(usage_rows)  # no canceled job ever reached the provider
    assert set(usage_rows) == ran
    calls = e2e.emulator("GET", "/emulator/stats")["by_model"].get("emu-slow", 0) - before
    assert calls == len(usage_rows)
    errors = e2e.get(f"/v1/batches/{batch_id}/errors", e2e.keys["a"]).text.splitlines()
    assert len(errors) == counts["canceled"] + counts["failed"]


def _wait_until_some_succeeded(stack: Stack, batch_id: str, count: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if stack.get(f"/v1/batches/{batch_id}", stack.keys["a"]).json()["counts"]["succeeded"] >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"fewer than {count} jobs of {batch_id} succeeded in 60 s")


def _batch_rows(stack: Stack, batch_id: str) -> tuple[set[str], set[str], list[str]]:
    """Ids of the batch's jobs that ran, that were canceled, and the job of each usage row."""
    engine = make_engine(stack.settings)
    try:
        with Session(engine) as session:
            jobs = session.exec(select(Job.id, Job.status).where(col(Job.batch_id) == batch_id)).all()
            ids = [job_id for job_id, _ in jobs]
            usage = list(session.exec(select(Usage.job_id).where(col(Usage.job_id).in_(ids))).all())
    finally:
        engine.dispose()
    ran = {job_id for job_id, status in jobs if status in ("succeeded", "failed")}
    return ran, {job_id for job_id, status in jobs if status == "canceled"}, usage
