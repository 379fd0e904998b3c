"""The token relay's framing: deltas, a restart when a new attempt begins, and the closing job."""

from __future__ import annotations

import json
import uuid
from typing import Any

from redis import Redis

from api.token_relay import Relay
from schemas.settings import StreamingSettings
from workers.keys import RedisKeys
from workers.token_stream import TokenPublisher


def events(frames: list[bytes]) -> list[tuple[str, Any]]:
    out = []
    for frame in frames:
        lines = dict(line.split(": ", 1) for line in frame.decode().strip().split("\n"))
        out.append((lines["event"], json.loads(lines["data"])))
    return out


def entry(n: int, attempt: int, text: str) -> tuple[bytes, dict[bytes, bytes]]:
    return f"1-{n}".encode(), {b"a": str(attempt).encode(), b"d": text.encode()}


def finished(content: str, status: str = "succeeded") -> dict[str, Any]:
    result = {"choices": [{"message": {"role": "assistant", "content": content}}]}
    return {
        "id": "job_1",
        "status": status,
        "attempts": 2,
        "result": result if status == "succeeded" else None,
    }


def test_a_new_attempt_restarts_the_text() -> None:
    relay = Relay()

    sent = events(relay.frames([entry(1, 1, "Hel"), entry(2, 1, "lo"), entry(3, 2, "Hi"), entry(4, 2, "!")]))

    assert sent == [
        ("delta", {"content": "Hel"}),
        ("delta", {"content": "lo"}),
        ("restart", {"attempt": 2}),
        ("delta", {"content": "Hi"}),
        ("delta", {"content": "!"}),
    ]
    assert relay.cursor == "1-4" and relay.text == ["Hi", "!"]


def test_closing_after_a_full_relay_sends_only_the_job() -> None:
    relay = Relay()
    relay.frames([entry(1, 1, "Hi"), entry(2, 1, "!")])

    assert [name for name, _ in events(relay.closing(finished("Hi!")))] == ["job"]


def test_closing_sends_the_stored_text_when_the_relay_does_not_match_it() -> None:
    never_streamed = events(Relay().closing(finished("From the cache")))
    relay = Relay()
    relay.frames([entry(1, 1, "Half an ans")])
    diverged = events(relay.closing(finished("Whole answer")))

    assert never_streamed == [("delta", {"content": "From the cache"}), ("job", finished("From the cache"))]
    assert [name for name, _ in diverged] == ["restart", "delta", "job"]
    assert diverged[1][1] == {"content": "Whole answer"}


def test_a_failed_job_closes_with_the_job_alone() -> None:
    assert [name for name, _ in events(Relay().closing(finished("", status="failed")))] == ["job"]


def test_the_publisher_appends_attempt_and_text_and_sets_a_lifetime(redis_url: str) -> None:
    redis, keys = Redis.from_url(redis_url), RedisKeys(f"sytest{uuid.uuid4().hex[:8]}")
    settings = StreamingSettings.model_validate({"token_ttl_s": 30})
    publish = TokenPublisher.for_job(redis, keys, settings, "job_x", attempt=3)

    for text in ("a", "b", "c"):
        publish(text)

    entries: Any = redis.xrange(keys.job_tokens("job_x"))
    assert [(f[b"a"], f[b"d"]) for _, f in entries] == [(b"3", b"a"), (b"3", b"b"), (b"3", b"c")]
    assert 0 < int(redis.ttl(keys.job_tokens("job_x"))) <= 30
    redis.delete(keys.job_tokens("job_x"))
