"""TokenStreaming: a streaming chat job's call gets a sink that publishes its text (real Redis)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from chain_support import make_ctx
from redis import Redis
from tests_support import make_test_settings

from schemas.openai import EmbeddingRequest
from schemas.settings import Settings
from workers.keys import RedisKeys
from workers.middleware.token_stream import TokenStreaming


@pytest.fixture
def settings(tmp_path: Path, redis_url: str) -> Settings:
    return make_test_settings(tmp_path, redis_url)


@pytest.fixture
def redis(settings: Settings) -> Iterator[Redis]:
    client = Redis.from_url(settings.redis_url)
    yield client
    for key in client.scan_iter(f"{settings.key_prefix}:*"):
        client.delete(key)
    client.close()


def test_a_streaming_job_publishes_its_text_to_its_own_stream_by_attempt(
    settings: Settings, redis: Redis
) -> None:
    keys = RedisKeys(settings.key_prefix)
    ctx = make_ctx(settings, stream=True)

    TokenStreaming(redis, keys).before_call(ctx)
    assert ctx.on_text is not None
    ctx.on_text("Hel")
    ctx.on_text("lo")

    entries: list[tuple[bytes, dict[bytes, bytes]]] = redis.xrange(keys.job_tokens(ctx.job.id))  # type: ignore[assignment]
    assert [(fields[b"a"], fields[b"d"]) for _, fields in entries] == [(b"1", b"Hel"), (b"1", b"lo")]
    assert 0 < redis.ttl(keys.job_tokens(ctx.job.id)) <= settings.streaming.token_ttl_s  # type: ignore[operator]


def test_a_job_that_does_not_stream_gets_no_sink(settings: Settings, redis: Redis) -> None:
    keys = RedisKeys(settings.key_prefix)
    plain = make_ctx(settings)
    embedding = make_ctx(settings)
    embedding.request = EmbeddingRequest.model_validate({"input": "Hi"})

    TokenStreaming(redis, keys).before_call(plain)
    TokenStreaming(redis, keys).before_call(embedding)

    assert plain.on_text is None and embedding.on_text is None
