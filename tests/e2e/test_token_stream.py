"""End to end: GET /v1/jobs/{id}/stream relays a streaming job's text as the emulator generates it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from e2e_stack import Stack
from redis import Redis
from sse_support import SseEvent, SseReader

from workers.keys import RedisKeys

LATENCY_MS = 2_000  # the emulator spreads it over the chunks, so the text trickles in


@contextmanager
def job_stream(stack: Stack, job_id: str, key: str | None = None) -> Iterator[SseReader]:
    headers = {"Authorization": f"Bearer {key or stack.keys['a']}"}
    reader = SseReader(f"{stack.api_url}/v1/jobs/{job_id}/stream", headers)
    try:
        yield reader
    finally:
        reader.close()


def until_job(reader: SseReader, timeout: float = 60) -> list[SseEvent]:
    """Every event up to and including the final ``job`` event."""
    events = [reader.next(timeout=timeout)]
    while events[-1].event != "job":
        events.append(reader.next(timeout=timeout))
    return events


def content(job: dict[str, Any]) -> str:
    return str(job["result"]["choices"][0]["message"]["content"])


def slow_stream_job(stack: Stack, text: str) -> dict[str, Any]:
    stack.emulator("POST", "/emulator/faults", json={"model": "emu-slow", "latency_ms": LATENCY_MS})
    return stack.submit("slow", text, stream=True, max_tokens=60)


def test_tokens_arrive_before_the_job_ends_and_join_to_the_stored_result(e2e: Stack) -> None:
    job = slow_stream_job(e2e, "Stream me the plot of Hamlet, scene by scene.")
    with job_stream(e2e, job["id"]) as reader:
        assert reader.status == 200 and reader.content_type.startswith("text/event-stream")
        events = until_job(reader)

    deltas = [e for e in events if e.event == "delta"]
    final = events[-1].json()
    stored = e2e.get(f"/v1/jobs/{job['id']}", e2e.keys["a"]).json()
    assert final["status"] == "succeeded" and final == stored
    assert len(deltas) > 5 and {e.event for e in events} == {"delta", "job"}
    assert "".join(e.json()["content"] for e in deltas) == content(stored)
    # The text trickled in over the call's latency, well before the job was done.
    assert events[-1].received_at - deltas[0].received_at > LATENCY_MS / 1000 / 2


def test_streamed_jobs_keep_usage_and_cost_as_unstreamed_ones(e2e: Stack) -> None:
    streamed = e2e.wait_final(e2e.submit("small", "Count my streamed tokens", stream=True)["id"])
    plain = e2e.wait_final(e2e.submit("small", "Count my streamed tokens")["id"])

    assert streamed["status"] == plain["status"] == "succeeded"
    assert streamed["usage"] == plain["usage"] and streamed["usage"]["completion_tokens"] > 0
    assert streamed["cost_usd"] == plain["cost_usd"] > 0
    assert content(streamed) == content(plain)


def test_a_late_client_catches_up_from_the_first_token(e2e: Stack) -> None:
    job = slow_stream_job(e2e, "Stream a long answer for a late reader.")
    time.sleep(LATENCY_MS / 1000 / 2)
    with job_stream(e2e, job["id"]) as reader:
        events = until_job(reader)

    text = "".join(e.json()["content"] for e in events if e.event == "delta")
    assert text == content(events[-1].json())


def test_a_finished_job_answers_its_whole_text_at_once(e2e: Stack) -> None:
    done = e2e.wait_final(e2e.submit("small", "Already finished")["id"])
    started = time.monotonic()
    with job_stream(e2e, done["id"]) as reader:
        events = until_job(reader)

    assert time.monotonic() - started < 5
    assert [e.event for e in events] == ["delta", "job"]
    assert events[0].json()["content"] == content(done) and events[1].json()["id"] == done["id"]


def test_a_failed_streaming_job_ends_with_its_error(e2e: Stack) -> None:
    e2e.emulator("POST", "/emulator/faults", json={"model": "emu-bad", "responses": [400], "mode": "always"})
    job = e2e.submit("bad", "this stream is refused", stream=True)
    with job_stream(e2e, job["id"]) as reader:
        events = until_job(reader)

    assert [e.event for e in events] == ["job"]
    assert events[0].json()["error"]["code"] == "provider_bad_request"


def test_another_tenants_job_is_not_found(e2e: Stack) -> None:
    job = e2e.submit("small", "mine alone", stream=True)
    response = httpx.get(
        f"{e2e.api_url}/v1/jobs/{job['id']}/stream",
        headers={"Authorization": f"Bearer {e2e.keys['b']}"},
        timeout=10,
    )

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_the_local_model_streams_its_answer_as_one_piece(e2e: Stack) -> None:
    job = e2e.submit("local", "Say hello in three words.", stream=True, max_tokens=12)
    with job_stream(e2e, job["id"]) as reader:
        events = until_job(reader, timeout=150)  # the first local job may convert the weights

    final = events[-1].json()
    assert final["status"] == "succeeded", final
    deltas = [e.json()["content"] for e in events if e.event == "delta"]
    assert deltas == [content(final)] and deltas[0]
    # The worker published it (the relay would send the stored text too, had it not).
    key = RedisKeys(e2e.settings.key_prefix).job_tokens(job["id"])
    tokens: Any = Redis.from_url(e2e.settings.redis_url).xrange(key)
    assert [fields[b"d"].decode() for _, fields in tokens] == deltas
