"""The openai adapter's streaming path, against the emulator: deltas relayed, answer assembled."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai.types.chat import ChatCompletionChunk
from tests_support import make_test_settings, running_emulator

from schemas import errors
from schemas.openai import ChatRequest
from schemas.settings import ModelConfig
from workers.providers.base import StreamingProvider
from workers.providers.openai_compat import OpenAICompatibleProvider
from workers.providers.openai_stream import relay

MODEL = ModelConfig.model_validate({"provider": "emulator", "model": "emu-a"})
REQUEST = ChatRequest.model_validate(
    {"messages": [{"role": "user", "content": "Tell me about streams."}], "max_tokens": 30, "stream": True}
)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_emulator(tmp_path_factory.mktemp("emulator")) as url:
        yield url


@pytest.fixture
def provider(emulator: str, tmp_path: Path) -> Iterator[OpenAICompatibleProvider]:
    settings = make_test_settings(tmp_path, "redis://127.0.0.1:6379/9")
    config = settings.providers["emulator"].model_copy(update={"base_url": f"{emulator}/v1"})
    adapter = OpenAICompatibleProvider(config, settings)
    httpx.delete(f"{emulator}/emulator/faults", timeout=5)
    yield adapter
    adapter.close()


def test_deltas_arrive_in_order_and_join_to_the_validated_answer(provider: OpenAICompatibleProvider) -> None:
    deltas: list[str] = []

    streamed = provider.stream_complete(REQUEST, MODEL, 5, deltas.append)
    whole = provider.complete(REQUEST, MODEL, 5)

    assert isinstance(provider, StreamingProvider)
    assert len(deltas) > 3
    assert "".join(deltas) == streamed.completion.choices[0].message.content
    assert streamed.completion.choices[0].message.content == whole.completion.choices[0].message.content
    assert streamed.completion.usage == whole.completion.usage
    assert streamed.completion.choices[0].finish_reason == whole.completion.choices[0].finish_reason
    assert streamed.completion.object == "chat.completion"


def test_errors_before_the_stream_map_onto_the_typed_tree(
    provider: OpenAICompatibleProvider, emulator: str
) -> None:
    script = {"model": "emu-a", "responses": [429, 503], "mode": "sequence", "retry_after_s": 2}
    httpx.post(f"{emulator}/emulator/faults", json=script, timeout=5)

    with pytest.raises(errors.ProviderRateLimited) as limited:
        provider.stream_complete(REQUEST, MODEL, 5, lambda _: None)
    with pytest.raises(errors.ProviderUnavailable):
        provider.stream_complete(REQUEST, MODEL, 5, lambda _: None)
    assert limited.value.retry_after == 2


def test_a_stalled_stream_is_a_timeout(provider: OpenAICompatibleProvider, emulator: str) -> None:
    httpx.post(f"{emulator}/emulator/faults", json={"model": "emu-a", "latency_ms": 20_000}, timeout=5)

    with pytest.raises(errors.ProviderTimeout):
        provider.stream_complete(REQUEST, MODEL, 0.5, lambda _: None)


def chunk(**fields: Any) -> ChatCompletionChunk:
    base = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": []}
    return ChatCompletionChunk.model_validate({**base, **fields})


def test_a_stream_without_usage_is_invalid_output() -> None:
    text = chunk(choices=[{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}])

    with pytest.raises(errors.InvalidOutput):
        relay([text], lambda _: None)
    with pytest.raises(errors.InvalidOutput):
        relay([], lambda _: None)


def test_relay_keeps_the_first_choice_and_takes_usage_from_the_last_chunk() -> None:
    sent: list[str] = []
    chunks = [
        chunk(choices=[{"index": 0, "delta": {"role": "assistant", "content": ""}}]),
        chunk(choices=[{"index": 0, "delta": {"content": "Hel"}}, {"index": 1, "delta": {"content": "X"}}]),
        chunk(choices=[{"index": 0, "delta": {"content": "lo"}, "finish_reason": "length"}]),
        chunk(usage={"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}),
    ]

    body = relay(chunks, sent.append)

    assert sent == ["Hel", "lo"]
    assert body["choices"] == [
        {"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "length"}
    ]
    counts = {key: body["usage"][key] for key in ("prompt_tokens", "completion_tokens", "total_tokens")}
    assert counts == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
