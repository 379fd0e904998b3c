"""End to end: real API, workers, beat, Redis and the emulator; submit, poll, read."""

from __future__ import annotations

import json
import time

from e2e_stack import Stack
from sqlmodel import Session, col, select

from infra.emulator.content import prompt_tokens
from schemas.tables import Usage
from workers.db import make_engine


def test_job_runs_on_emulator_and_records_content_usage_and_cost(e2e: Stack) -> None:
    job = e2e.submit("small", "Summarise the plot of Hamlet in one line.", max_tokens=40)
    assert job["status"] == "queued"
    done = e2e.wait_final(job["id"])
    assert done["status"] == "succeeded", done
    content = done["result"]["choices"][0]["message"]["content"]
    assert "Hamlet" in content
    usage = done["usage"]
    messages = [{"role": "user", "content": "Summarise the plot of Hamlet in one line."}]
    assert usage["prompt_tokens"] == prompt_tokens(messages)
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert done["model"] == "emu-a" and done["provider"] == "emulator" and done["attempts"] == 1
    expected_cost = (usage["prompt_tokens"] * 0.5 + usage["completion_tokens"] * 1.5) / 1e6
    assert abs(done["cost_usd"] - expected_cost) < 1e-9
    assert done["latency_ms"] is not None and done["attempt_log"][0]["outcome"] == "ok"


def test_same_prompt_gives_same_content(e2e: Stack) -> None:
    first = e2e.wait_final(e2e.submit("small", "Deterministic please")["id"])
    second = e2e.wait_final(e2e.submit("small", "Deterministic please")["id"])
    assert first["result"]["choices"][0]["message"] == second["result"]["choices"][0]["message"]


def test_retryable_503_twice_then_success_takes_three_attempts(e2e: Stack) -> None:
    e2e.emulator(
        "POST", "/emulator/faults", json={"model": "emu-retry", "responses": [503, 503], "mode": "sequence"}
    )
    done = e2e.wait_final(e2e.submit("retry", "retry me")["id"])
    assert done["status"] == "succeeded", done
    assert done["attempts"] == 3
    assert [a["outcome"] for a in done["attempt_log"]] == [
        "provider_unavailable",
        "provider_unavailable",
        "ok",
    ]


def test_primary_always_failing_falls_back_to_second_model(e2e: Stack) -> None:
    e2e.emulator("POST", "/emulator/faults", json={"model": "emu-a", "responses": [503], "mode": "always"})
    done = e2e.wait_final(e2e.submit("small", "fallback please")["id"])
    assert done["status"] == "succeeded", done
    assert done["model"] == "emu-b"
    assert [a["model"] for a in done["attempt_log"]] == ["emu-a", "emu-b"]
    expected_cost = (done["usage"]["prompt_tokens"] * 1.0 + done["usage"]["completion_tokens"] * 2.0) / 1e6
    assert abs(done["cost_usd"] - expected_cost) < 1e-9


def test_permanent_400_fails_at_once_with_its_code(e2e: Stack) -> None:
    e2e.emulator("POST", "/emulator/faults", json={"model": "emu-bad", "responses": [400], "mode": "always"})
    done = e2e.wait_final(e2e.submit("bad", "this request is rejected")["id"])
    assert done["status"] == "failed"
    assert done["error"]["code"] == "provider_bad_request"
    assert done["attempts"] == 1


def test_every_provider_call_is_a_usage_row(e2e: Stack) -> None:
    e2e.emulator(
        "POST", "/emulator/faults", json={"model": "emu-retry", "responses": [500], "mode": "sequence"}
    )
    done = e2e.wait_final(e2e.submit("retry", "count my calls")["id"])
    engine = make_engine(e2e.settings)
    with Session(engine) as session:
        rows = session.exec(
            select(Usage).where(Usage.job_id == done["id"]).order_by(col(Usage.attempt))
        ).all()
    assert [row.outcome for row in rows] == ["provider_unavailable", "ok"]
    assert rows[1].prompt_tokens == done["usage"]["prompt_tokens"]


def test_long_poll_returns_when_the_job_finishes(e2e: Stack) -> None:
    e2e.emulator(
        "POST",
        "/emulator/faults",
        json={"model": "emu-slow", "latency_ms": 1500, "responses": [], "mode": "sequence"},
    )
    job = e2e.submit("slow", "take your time")
    started = time.monotonic()
    response = e2e.get(f"/v1/jobs/{job['id']}", e2e.keys["a"], params={"wait": 20})
    elapsed = time.monotonic() - started
    assert response.json()["status"] == "succeeded"
    assert 1.0 < elapsed < 10.0


def test_each_provider_call_writes_one_structured_log_line_without_message_text(e2e: Stack) -> None:
    secret_text = "my private question about zebras"
    done = e2e.wait_final(e2e.submit("small", secret_text)["id"])
    lines = [
        json.loads(line)
        for line in (e2e.log_dir / "worker-emu.log").read_text().splitlines()
        if line.startswith("{") and done["id"] in line
    ]
    calls = [line for line in lines if line.get("event") == "provider_call"]
    assert len(calls) == 1
    fields = {
        "job",
        "tenant",
        "tier",
        "model",
        "provider",
        "latency_ms",
        "prompt_tokens",
        "completion_tokens",
        "cost_usd",
        "cache",
        "attempt",
        "outcome",
    }
    assert fields <= calls[0].keys()
    assert calls[0]["outcome"] == "ok" and calls[0]["model"] == "emu-a"
    assert "zebras" not in "\n".join(json.dumps(line) for line in lines)
