"""The provider emulator: OpenAI-shaped replies, keys, validation, embeddings, stats, the SDK."""

from __future__ import annotations

import base64
import math
import struct
from typing import Any

import httpx
import openai
import pytest
from emulator_support import chat, make_client, reply
from emulator_support import served_emulator as served_emulator  # fixture
from fastapi.testclient import TestClient

from infra.emulator import EmulatorConfig, create_app
from infra.emulator.content import count_tokens


def test_reply_is_a_chat_completion_determined_by_the_prompt() -> None:
    client = make_client()
    first, again, other = (
        chat(client, "What is a switchyard?"),
        chat(client, "What is a switchyard?"),
        chat(client, "Why?"),
    )
    body = first.json()
    assert first.status_code == 200 and body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-") and body["model"] == "gpt-4o-mini"
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["choices"][0]["finish_reason"] == "stop"
    assert reply(first) == reply(again) != reply(other)
    assert reply(first).startswith("Emulated answer to: What is a switchyard?")


def test_usage_counts_prompt_and_completion_tokens() -> None:
    usage = chat(make_client(), "Count these six tokens, please").json()
    counted = usage["usage"]
    assert counted["prompt_tokens"] == 3 + (3 + 4) + (6 + 4)
    assert counted["completion_tokens"] == count_tokens(usage["choices"][0]["message"]["content"])
    assert counted["total_tokens"] == counted["prompt_tokens"] + counted["completion_tokens"]


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_max_tokens_truncates_with_finish_reason_length(field: str) -> None:
    limit: dict[str, Any] = {field: 5}
    body = chat(make_client(), "Tell me everything.", **limit).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["choices"][0]["message"]["content"] == "Emulated answer to: Tell"
    assert body["usage"]["completion_tokens"] == 5


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic dXNlcjpwdw=="}, {"Authorization": "Bearer "}],
    ids=["none", "not-bearer", "empty"],
)
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/embeddings", "/v1/models"])
def test_a_call_without_a_key_is_401_like_a_provider(headers: dict[str, str], path: str) -> None:
    client = TestClient(create_app(EmulatorConfig()), headers=headers)
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "input": "hi"}

    response = client.post(path, json=body) if path != "/v1/models" else client.get(path)

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "didn't provide an API key" in response.json()["error"]["message"]
    assert client.get("/emulator/stats").json()["requests"] == 0  # refused before it counts


def test_a_configured_key_is_the_only_one_taken() -> None:
    app = create_app(EmulatorConfig(api_key="right"))
    wrong = TestClient(app, headers={"Authorization": "Bearer wrong"})
    right = TestClient(app, headers={"Authorization": "Bearer right"})

    refused = chat(wrong, "hi")

    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"
    assert chat(right, "hi").status_code == 200
    assert wrong.get("/emulator/stats").status_code == 200  # the control API needs no key


@pytest.mark.parametrize("messages", [None, [], ["not an object"]])
def test_bad_messages_are_400_with_openai_error_body(messages: Any) -> None:
    body = {"model": "gpt-4o-mini", "messages": messages}
    response = make_client().post("/v1/chat/completions", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert response.json()["error"]["param"] == "messages"


def test_embeddings_are_deterministic_unit_vectors() -> None:
    client = make_client()
    body = {"model": "text-embedding-3-small", "input": ["alpha", "beta", "alpha"]}
    data = client.post("/v1/embeddings", json=body).json()
    vectors = [item["embedding"] for item in data["data"]]
    assert data["object"] == "list" and [d["index"] for d in data["data"]] == [0, 1, 2]
    assert all(len(v) == 384 for v in vectors)
    assert math.isclose(sum(x * x for x in vectors[0]), 1.0, rel_tol=1e-9)
    assert vectors[0] == vectors[2] != vectors[1]
    assert data["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    packed = client.post("/v1/embeddings", json={**body, "encoding_format": "base64"}).json()
    decoded = struct.unpack("<384f", base64.b64decode(packed["data"][0]["embedding"]))
    assert all(math.isclose(a, b, abs_tol=1e-6) for a, b in zip(decoded, vectors[0], strict=True))


def test_stats_count_requests_statuses_models_tokens_until_reset() -> None:
    client = make_client(rpm=1)
    ok_a = chat(client, "hi", model="a")
    chat(client, "hi", model="a")
    ok_b = chat(client, "hi there", model="b")
    stats = client.get("/emulator/stats").json()
    assert stats == {
        "requests": 3,
        "by_status": {"200": 2, "429": 1},
        "by_model": {"a": 2, "b": 1},
        "tokens": ok_a.json()["usage"]["total_tokens"] + ok_b.json()["usage"]["total_tokens"],
    }
    client.post("/emulator/reset")
    assert client.get("/emulator/stats").json()["requests"] == 0
    assert chat(client, "hi", model="a").status_code == 200


def test_models_are_listed() -> None:
    models = make_client().get("/v1/models").json()
    assert models["object"] == "list" and "gpt-4o-mini" in [m["id"] for m in models["data"]]


def test_official_openai_sdk_talks_to_the_served_emulator(served_emulator: str) -> None:
    sdk = openai.OpenAI(base_url=f"{served_emulator}/v1", api_key="x", max_retries=0)
    messages: Any = [{"role": "user", "content": "Hello over HTTP"}]
    completion = sdk.chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert completion.choices[0].message.content
    assert completion.usage is not None and completion.usage.total_tokens > 0
    vectors = sdk.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert [len(item.embedding) for item in vectors.data] == [384, 384]
    httpx.post(f"{served_emulator}/emulator/config", json={"rpm": 1})
    sdk.chat.completions.create(model="gpt-4o-mini", messages=messages)
    with pytest.raises(openai.RateLimitError) as refused:
        sdk.chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert refused.value.response.headers["retry-after"]
    httpx.post(f"{served_emulator}/emulator/reset")
    httpx.post(f"{served_emulator}/emulator/config", json={"rpm": None})
    fault = {"model": "gpt-4o-mini", "responses": ["timeout"], "hang_s": 1}
    httpx.post(f"{served_emulator}/emulator/faults", json=fault)
    with pytest.raises(openai.APITimeoutError):
        sdk.with_options(timeout=0.3).chat.completions.create(model="gpt-4o-mini", messages=messages)
