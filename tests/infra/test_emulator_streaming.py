"""The emulator streams chat.completions as OpenAI does, read here by the real openai SDK."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from tests_support import EMULATOR_KEY, running_emulator

from infra.emulator.streaming import pieces

MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Stream the plot of Hamlet, please."}
]


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_emulator(tmp_path_factory.mktemp("emulator")) as url:
        yield url


@pytest.fixture
def client(emulator: str) -> Iterator[openai.OpenAI]:
    httpx.delete(f"{emulator}/emulator/faults", timeout=5)
    with openai.OpenAI(base_url=f"{emulator}/v1", api_key="x", max_retries=0) as sdk:
        yield sdk


def test_sdk_reads_chunks_whose_text_and_usage_match_the_unstreamed_answer(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(model="emu-a", messages=MESSAGES, max_tokens=40)
    chunks = list(
        client.chat.completions.create(
            model="emu-a",
            messages=MESSAGES,
            max_tokens=40,
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert len({chunk.id for chunk in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 5
    assert chunks[-2].choices[0].finish_reason == whole.choices[0].finish_reason
    assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage
    assert all(chunk.usage is None for chunk in chunks[:-1])


def test_without_include_usage_there_is_no_usage_chunk(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="emu-a", messages=MESSAGES, stream=True))

    assert all(chunk.choices and chunk.usage is None for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_the_wire_format_is_sse_ending_with_done(emulator: str) -> None:
    httpx.post(f"{emulator}/emulator/config", json={"rpm": 100_000}, timeout=5).raise_for_status()
    body = {"model": "emu-limits", "messages": MESSAGES, "stream": True}
    response = httpx.post(f"{emulator}/v1/chat/completions", headers=EMULATOR_KEY, json=body, timeout=10)

    assert response.headers["content-type"].startswith("text/event-stream")
    events = [block for block in response.text.split("\n\n") if block]
    assert all(block.startswith("data: ") for block in events)
    assert events[-1] == "data: [DONE]"
    unstreamed = httpx.post(
        f"{emulator}/v1/chat/completions", headers=EMULATOR_KEY, json={**body, "stream": False}, timeout=10
    )
    limit_headers = {name for name in unstreamed.headers if name.startswith("x-ratelimit")}
    httpx.post(f"{emulator}/emulator/config", json={"rpm": None}, timeout=5).raise_for_status()
    assert "x-ratelimit-remaining-requests" in limit_headers and limit_headers <= set(response.headers)


def test_latency_is_spread_over_the_chunks(client: openai.OpenAI, emulator: str) -> None:
    httpx.post(f"{emulator}/emulator/faults", json={"model": "emu-slow", "latency_ms": 800}, timeout=5)
    started = time.monotonic()
    arrivals = []
    for chunk in client.chat.completions.create(model="emu-slow", messages=MESSAGES, stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic() - started)

    assert arrivals[0] < 0.4, "the first token waited for the whole latency"
    assert arrivals[-1] >= 0.6


@pytest.mark.parametrize(
    "extra",
    [{"stream": "yes"}, {"stream_options": {"include_usage": True}}, {"stream": True, "stream_options": 3}],
    ids=["stream-not-bool", "options-without-stream", "options-not-object"],
)
def test_bad_stream_fields_answer_400(emulator: str, extra: dict[str, object]) -> None:
    body = {"model": "emu-a", "messages": MESSAGES, **extra}
    response = httpx.post(f"{emulator}/v1/chat/completions", headers=EMULATOR_KEY, json=body, timeout=10)

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_pieces_join_back_to_the_text() -> None:
    for text in ("Hello, world!  Two  spaces.\nNew line ", "", '{"answer": "x"}'):
        assert "".join(pieces(text)) == text
