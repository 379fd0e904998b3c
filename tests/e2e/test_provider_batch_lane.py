"""End to end: batch-priority 24h jobs through the provider's Batch API (the emulator's),
with the real API, workers, beat and Redis: one submission, the batch price, and the live
lane when the provider batch fails."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import openai
from e2e_stack import Stack

TIER = "provider_lane"
LIVE_PRICES = (1.0, 2.0)  # emu-lane in tests/switchyard-test.toml
BATCH_PRICES = (0.5, 1.0)


def submit_lane_job(e2e: Stack, text: str) -> str:
    body = {
        "tier": TIER,
        "priority": "batch",
        "completion_window": "24h",
        "cache": "off",
        "request": {"messages": [{"role": "user", "content": text}], "max_tokens": 24},
    }
    response = e2e.post("/v1/jobs", e2e.keys["a"], json=body)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"
    return str(response.json()["id"])


def counters(e2e: Stack) -> tuple[int, int, int]:
    """Batches created, batch lines answered, live chat calls to emu-lane."""
    batches = e2e.emulator("GET", "/emulator/batches")
    live = e2e.emulator("GET", "/emulator/stats")["by_model"].get("emu-lane", 0)
    return batches["created"], batches["lines"], live


def priced(job: dict[str, Any], prices: tuple[float, float]) -> float:
    return (job["usage"]["prompt_tokens"] * prices[0] + job["usage"]["completion_tokens"] * prices[1]) / 1e6


def test_eight_lane_jobs_go_as_one_provider_batch_and_cost_the_batch_price(e2e: Stack) -> None:
    before = counters(e2e)
    job_ids = [submit_lane_job(e2e, f"Summarise report number {n}") for n in range(8)]
    done = [e2e.wait_final(job_id, timeout=90) for job_id in job_ids]
    after = counters(e2e)
    assert (after[0] - before[0], after[1] - before[1], after[2] - before[2]) == (1, 8, 0)
    for job, n in zip(done, range(8), strict=True):
        assert job["status"] == "succeeded", job
        assert f"Summarise report number {n}" in job["result"]["choices"][0]["message"]["content"]
        assert job["model"] == "emu-lane" and job["provider"] == "emulator_batch" and job["attempts"] == 1
        assert job["usage"]["prompt_tokens"] > 0 and job["usage"]["completion_tokens"] > 0
        assert abs(job["cost_usd"] - priced(job, BATCH_PRICES)) < 1e-9
        assert job["cost_usd"] < priced(job, LIVE_PRICES)
        assert [entry["lane"] for entry in job["attempt_log"]] == ["provider_batch"]


def test_jobs_of_a_failed_provider_batch_run_live(e2e: Stack) -> None:
    e2e.emulator("POST", "/emulator/batches", json={"outcomes": ["fail"]})
    before = counters(e2e)
    job_ids = [submit_lane_job(e2e, f"Classify ticket {n}") for n in range(2)]
    done = [e2e.wait_final(job_id, timeout=90) for job_id in job_ids]
    after = counters(e2e)
    assert (after[0] - before[0], after[1] - before[1], after[2] - before[2]) == (1, 0, 2)
    for job in done:
        assert job["status"] == "succeeded", job
        outcomes = [(entry["outcome"], entry.get("lane")) for entry in job["attempt_log"]]
        assert outcomes == [("provider_batch_failed", "provider_batch"), ("ok", None)]
        assert job["attempts"] == 2 and abs(job["cost_usd"] - priced(job, LIVE_PRICES)) < 1e-9


def test_a_live_job_on_the_same_tier_is_called_at_once(e2e: Stack) -> None:
    before = counters(e2e)
    job = e2e.wait_final(e2e.submit(TIER, "Answer me now")["id"], timeout=30)
    assert job["status"] == "succeeded" and "lane" not in job["attempt_log"][0]
    assert counters(e2e)[2] - before[2] == 1 and counters(e2e)[0] == before[0]


def test_a_switchyard_batch_on_the_lane_tier_becomes_one_provider_batch(e2e: Stack) -> None:
    client = openai.OpenAI(base_url=f"{e2e.api_url}/v1", api_key=e2e.keys["a"], max_retries=0, timeout=60)
    tag = uuid.uuid4().hex[:8]
    lines = [
        {
            "custom_id": f"{tag}-{n}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": TIER,
                "messages": [{"role": "user", "content": f"Extract the date ({tag}, {n})"}],
            },
        }
        for n in range(8)
    ]
    before = counters(e2e)
    uploaded = client.files.create(
        file=("lane.jsonl", "\n".join(map(json.dumps, lines)).encode()), purpose="batch"
    )
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    deadline = time.monotonic() + 90
    while batch.status not in ("completed", "failed", "cancelled", "expired") and time.monotonic() < deadline:
        time.sleep(0.5)
        batch = client.batches.retrieve(batch.id)
    assert batch.status == "completed" and batch.output_file_id, batch
    output = [json.loads(line) for line in client.files.content(batch.output_file_id).text.splitlines()]
    assert [record["custom_id"] for record in output] == [line["custom_id"] for line in lines]
    assert all(record["response"]["status_code"] == 200 for record in output)
    after = counters(e2e)
    assert (after[0] - before[0], after[1] - before[1], after[2] - before[2]) == (1, 8, 0)
