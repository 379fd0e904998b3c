"""End to end: GET /v1/events streams final states in order, resumes by id, per tenant."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from e2e_stack import Stack
from sse_support import SseReader

from infra.launch import api_argv, free_port, wait_http

# No worker serves this tier in the stack, so a job there stays queued until it is canceled.
IDLE_TIER = "cached"


@contextmanager
def events(stack: Stack, key: str, **headers: str) -> Iterator[SseReader]:
    params = {"since": headers.pop("since")} if "since" in headers else None
    reader = SseReader(f"{stack.api_url}/v1/events", {"Authorization": f"Bearer {key}", **headers}, params)
    try:
        yield reader
    finally:
        reader.close()


def finished(stack: Stack, content: str, key: str | None = None) -> str:
    """Run a job on the emulator to success; its id."""
    job = stack.wait_final(stack.submit("small", content, key=key)["id"], key=key)
    assert job["status"] == "succeeded", job
    return str(job["id"])


def test_events_arrive_in_order_with_every_final_state(e2e: Stack) -> None:
    e2e.emulator("POST", "/emulator/faults", json={"model": "emu-bad", "responses": [400], "mode": "always"})
    with events(e2e, e2e.keys["a"]) as reader:
        assert reader.status == 200 and reader.content_type.startswith("text/event-stream")
        assert reader.next(skip=("comment",)).event == "retry"
        succeeded = finished(e2e, "events in order one")
        failed = e2e.wait_final(e2e.submit("bad", "events in order two")["id"])["id"]
        queued = e2e.submit(IDLE_TIER, "events in order three")["id"]
        assert e2e.post(f"/v1/jobs/{queued}/cancel", e2e.keys["a"]).status_code == 200
        got = [reader.next() for _ in range(3)]

    assert [(e.event, e.json()["data"]["id"]) for e in got] == [
        ("job.succeeded", succeeded),
        ("job.failed", failed),
        ("job.canceled", queued),
    ]
    assert [e.json()["type"] for e in got] == [e.event for e in got]
    assert got[1].json()["data"]["error"]["code"] == "provider_bad_request"
    ids = [e.id for e in got]
    assert all(ids) and ids == sorted(ids, key=lambda i: tuple(int(p) for p in str(i).split("-")))
    assert len(set(ids)) == 3


def test_a_tenant_sees_only_its_own_events(e2e: Stack) -> None:
    with events(e2e, e2e.keys["a"]) as for_a, events(e2e, e2e.keys["b"]) as for_b:
        of_b = finished(e2e, "tenant b's job", key=e2e.keys["b"])
        of_a = finished(e2e, "tenant a's job")
        assert for_a.next().json()["data"]["id"] == of_a
        assert for_b.next().json()["data"]["id"] == of_b
        # Give a leak time to show: neither stream carries anything else.
        assert for_a.drain(1.5) == [] and for_b.drain(0.5) == []


def test_resume_with_last_event_id_sends_what_was_missed_in_order(e2e: Stack) -> None:
    with events(e2e, e2e.keys["a"]) as reader:
        first = finished(e2e, "resume one")
        seen = reader.next()
        assert seen.json()["data"]["id"] == first
    missed = [finished(e2e, f"resume missed {n}") for n in range(3)]

    assert seen.id is not None
    with events(e2e, e2e.keys["a"], **{"Last-Event-ID": seen.id}) as resumed:
        replayed = [resumed.next() for _ in range(3)]
        after = finished(e2e, "resume live again")
        live = resumed.next()
    assert [e.json()["data"]["id"] for e in replayed] == missed
    assert live.json()["data"]["id"] == after
    # The same through the query parameter, for clients that cannot set headers.
    with events(e2e, e2e.keys["a"], since=seen.id) as again:
        assert [again.next().json()["data"]["id"] for _ in range(4)] == [*missed, after]


def test_resume_past_the_retention_window_says_reset_then_replays(e2e: Stack) -> None:
    kept = finished(e2e, "kept before the reset")
    with events(e2e, e2e.keys["a"], **{"Last-Event-ID": "1000-0"}) as reader:
        reset = reader.next()
        replayed = reader.drain(1.0)
    assert reset.event == "reset"
    assert reset.json()["code"] == "event_history_lost"
    # Everything kept comes after the reset, oldest first.
    assert kept in [e.json()["data"]["id"] for e in replayed]
    # Tenant a's whole kept history: other tests of the suite ran batches too.
    assert all(e.event.split(".")[0] in {"job", "batch"} for e in replayed)
    assert [e.id for e in replayed] == sorted(
        (e.id for e in replayed), key=lambda i: tuple(int(p) for p in str(i).split("-"))
    )


def test_each_api_process_serves_its_own_subscribers_from_redis(e2e: Stack) -> None:
    port = free_port()
    e2e.processes.start("api-second", api_argv(port, log_level="warning"))
    second = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{second}/readyz", alive=e2e.processes.check_alive)
        headers = {"Authorization": f"Bearer {e2e.keys['a']}"}
        on_first = SseReader(f"{e2e.api_url}/v1/events", headers)
        on_second = SseReader(f"{second}/v1/events", headers)
        job = finished(e2e, "told by two processes")
        ids = {reader.next().json()["data"]["id"] for reader in (on_first, on_second)}
        on_first.close()
        on_second.close()
    finally:
        e2e.processes.stop("api-second")
    assert ids == {job}


def test_malformed_last_event_id_is_a_400_with_its_code(e2e: Stack) -> None:
    for bad in ("abc", "12-x", "-1-0", "1-2-3"):
        response = httpx.get(
            f"{e2e.api_url}/v1/events",
            headers={"Authorization": f"Bearer {e2e.keys['a']}", "Last-Event-ID": bad},
            timeout=10,
        )
        assert response.status_code == 400, bad
        assert response.json()["error"]["code"] == "invalid_last_event_id"


def test_idle_stream_sends_keep_alive_comments(e2e: Stack) -> None:
    with events(e2e, e2e.keys["b"]) as reader:
        comment = reader.next(timeout=5, skip=("retry",))
    assert comment.event == "comment" and comment.data == "keep-alive"


def test_events_need_an_api_key(e2e: Stack) -> None:
    response = httpx.get(f"{e2e.api_url}/v1/events", timeout=10)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
