"""The provider emulator: OpenAI-shaped replies, rate limits, latency and scripted faults."""

import asyncio
import base64
import json
import math
import re
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import httpx
import openai
import pytest
from fastapi.testclient import TestClient
from tests_support import EMULATOR_KEY

from infra.emulator import EmulatorConfig, create_app
from infra.emulator.content import count_tokens
from infra.emulator.limits import RateLimiter, format_duration

REPO_ROOT = Path(__file__).resolve().parents[2]
RATE_HEADERS = [
    f"x-ratelimit-{part}-{kind}"
    for part in ("limit", "remaining", "reset")
    for kind in ("requests", "tokens")
]


class Reply(Protocol):
    """What the tests read of an HTTP response (httpx's, or the test client's httpx2's)."""

    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def content(self) -> bytes: ...
    def json(self, **kwargs: Any) -> Any: ...


def make_client(**config: Any) -> TestClient:
    """Return an in-process client, sending a key, for an emulator with the given config."""
    return TestClient(create_app(EmulatorConfig(**config)), headers=EMULATOR_KEY)


def chat(client: TestClient, text: str, model: str = "gpt-4o-mini", **body: Any) -> Reply:
    """Send a one-message chat completion."""
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]
    return client.post("/v1/chat/completions", json={"model": model, "messages": messages, **body})


def script(client: TestClient, **fault: Any) -> None:
    """Script faults through the control API."""
    assert client.post("/emulator/faults", json=fault).status_code == 200


def reply(response: Reply) -> str:
    """Return the assistant text of a chat completion."""
    text: str = response.json()["choices"][0]["message"]["content"]
    return text


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


def test_rpm_over_the_window_answers_429_until_the_window_slides() -> None:
    client = make_client(rpm=2, tpm=10_000, window_s=0.5)
    assert [chat(client, "hi").status_code for _ in range(2)] == [200, 200]
    refused = chat(client, "hi")
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert refused.headers["retry-after"] == "1"
    assert 0 < int(refused.headers["retry-after-ms"]) <= 500
    assert all(name in refused.headers for name in RATE_HEADERS)
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    time.sleep(0.55)
    assert chat(client, "hi").status_code == 200


def test_tpm_limit_counts_prompt_plus_max_tokens() -> None:
    client = make_client(tpm=100, window_s=60)
    first = chat(client, "hi", max_tokens=60)
    assert first.status_code == 200
    assert first.headers["x-ratelimit-remaining-tokens"] == str(100 - (3 + 7 + 5) - 60)
    assert "x-ratelimit-limit-requests" not in first.headers
    used = first.json()["usage"]["total_tokens"]
    refused = chat(client, "hi", max_tokens=60)
    assert refused.status_code == 429 and "tokens" in refused.json()["error"]["message"]
    assert f"Used {used}, Requested {15 + 60}." in refused.json()["error"]["message"]
    assert re.fullmatch(r"59\.\d+s|1m0s", refused.headers["x-ratelimit-reset-tokens"])


def test_each_model_has_its_own_rate_limit_window() -> None:
    client = make_client(rpm=2, window_s=60)
    first, second, third = (chat(client, "hi", model="a") for _ in range(3))
    assert [first.status_code, second.status_code, third.status_code] == [200, 200, 429]
    assert [r.headers["x-ratelimit-remaining-requests"] for r in (first, second, third)] == ["1", "0", "0"]
    other = chat(client, "hi", model="b")
    assert other.status_code == 200 and other.headers["x-ratelimit-remaining-requests"] == "1"
    assert other.headers["x-ratelimit-limit-requests"] == "2"
    script(client, model="a", responses=[503])
    assert chat(client, "hi", model="a").headers["x-ratelimit-remaining-requests"] == "0"
    unparsed = client.post("/v1/chat/completions", json={"model": "a", "messages": []})
    assert unparsed.status_code == 400 and not any(name in unparsed.headers for name in RATE_HEADERS)
    client.post("/emulator/config", json={"rpm": 3})
    assert chat(client, "hi", model="a").headers["x-ratelimit-remaining-requests"] == "0"
    assert chat(client, "hi", model="b").headers["x-ratelimit-remaining-requests"] == "1"
    client.post("/emulator/reset")
    assert chat(client, "hi", model="a").headers["x-ratelimit-remaining-requests"] == "2"


def test_tpm_window_keeps_the_tokens_a_reply_used_not_its_max_tokens() -> None:
    client = make_client(tpm=1000, window_s=60)
    first = chat(client, "hi", max_tokens=500)
    assert first.headers["x-ratelimit-remaining-tokens"] == str(1000 - 15 - 500)
    used = first.json()["usage"]["total_tokens"]
    assert first.json()["choices"][0]["finish_reason"] == "stop" and used < 15 + 500
    script(client, model="gpt-4o-mini", responses=[503])
    assert chat(client, "hi").headers["x-ratelimit-remaining-tokens"] == str(1000 - used)
    second = chat(client, "hi", max_tokens=500)
    assert second.headers["x-ratelimit-remaining-tokens"] == str(1000 - used - 15 - 500)


def test_errors_after_admission_keep_the_estimated_tokens() -> None:
    client = make_client(tpm=1000, window_s=60)
    script(client, model="m", responses=["malformed"])
    assert chat(client, "hi", model="m", max_tokens=500).status_code == 200
    script(client, model="m", responses=[503])
    assert chat(client, "hi", model="m").headers["x-ratelimit-remaining-tokens"] == str(1000 - 15 - 500)


def test_scripted_sequence_answers_in_order_then_normal() -> None:
    client = make_client()
    script(client, model="flaky", responses=[503, 503], mode="sequence")
    statuses = [chat(client, "hi", model="flaky").status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert chat(client, "hi", model="steady").status_code == 200


def test_always_mode_answers_until_cleared() -> None:
    client = make_client()
    script(client, model="*", responses=[500], mode="always")
    assert [chat(client, "hi", model=m).status_code for m in ("a", "b", "a")] == [500, 500, 500]
    assert chat(client, "hi").json()["error"]["type"] == "server_error"
    client.delete("/emulator/faults")
    assert chat(client, "hi").status_code == 200


def test_scripted_429_carries_retry_after_and_400_its_error_type() -> None:
    client = make_client()
    script(client, model="m", responses=[429, 400], retry_after_s=3)
    limited, invalid = chat(client, "hi", model="m"), chat(client, "hi", model="m")
    assert limited.status_code == 429 and limited.headers["retry-after"] == "3"
    assert limited.headers["retry-after-ms"] == "3000"
    assert invalid.json()["error"]["code"] == "invalid_request"


def test_unknown_scripted_status_is_refused() -> None:
    response = make_client().post("/emulator/faults", json={"model": "m", "responses": [418]})
    assert response.status_code == 422


def test_timeout_fault_hangs_past_the_client_timeout_then_answers() -> None:
    async def scenario() -> tuple[float, int]:
        transport = httpx.ASGITransport(app=create_app(EmulatorConfig()))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://emulator", headers=EMULATOR_KEY
        ) as client:
            fault = {"model": "m", "responses": ["timeout", "timeout"], "hang_s": 0.3}
            await client.post("/emulator/faults", json=fault)
            body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(client.post("/v1/chat/completions", json=body), 0.05)
            started = time.perf_counter()
            response = await client.post("/v1/chat/completions", json=body)
            return time.perf_counter() - started, response.status_code

    elapsed, status = asyncio.run(scenario())
    assert elapsed >= 0.3 and status == 200


def test_malformed_fault_is_not_a_valid_chat_completion() -> None:
    client = make_client()
    script(client, model="m", responses=["malformed", "malformed"])
    wrong_shape, truncated = chat(client, "hi", model="m"), chat(client, "hi", model="m")
    assert wrong_shape.status_code == truncated.status_code == 200
    assert not isinstance(wrong_shape.json()["choices"], list)
    with pytest.raises(json.JSONDecodeError):
        json.loads(truncated.content)


def test_latency_is_applied_globally_and_per_model() -> None:
    client = make_client(latency_ms=60)
    started = time.perf_counter()
    chat(client, "hi")
    assert time.perf_counter() - started >= 0.06
    script(client, model="slow-model", latency_ms=150, responses=[], mode="sequence")
    started = time.perf_counter()
    assert chat(client, "hi", model="slow-model").status_code == 200
    assert time.perf_counter() - started >= 0.21


def test_fail_rate_one_answers_only_server_errors() -> None:
    client = make_client(fail_rate=1.0)
    assert {chat(client, "hi").status_code for _ in range(20)} <= {500, 503}


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


def test_config_endpoint_changes_limits_at_run_time() -> None:
    client = make_client()
    assert "x-ratelimit-limit-requests" not in chat(client, "hi").headers
    config = client.post("/emulator/config", json={"rpm": 1, "latency_ms": 1}).json()
    assert config["rpm"] == 1 and config["latency_ms"] == 1
    assert [chat(client, "hi").status_code for _ in range(2)] == [200, 429]
    client.post("/emulator/config", json={"rpm": None})
    assert chat(client, "hi").status_code == 200


def test_models_are_listed() -> None:
    models = make_client().get("/v1/models").json()
    assert models["object"] == "list" and "gpt-4o-mini" in [m["id"] for m in models["data"]]


@pytest.mark.parametrize(("seconds", "text"), [(0.25, "250ms"), (1, "1s"), (360, "6m0s"), (90.5, "1m30.5s")])
def test_durations_use_openai_header_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_limiter_retry_after_is_when_enough_tokens_leave_the_window() -> None:
    now = [100.0]
    limiter = RateLimiter(rpm=None, tpm=100, window_s=60, clock=lambda: now[0])
    assert limiter.acquire(40).allowed
    now[0] = 110.0
    assert limiter.acquire(50).allowed
    now[0] = 120.0
    refused = limiter.acquire(30)
    assert not refused.allowed and refused.retry_after_s == pytest.approx(40.0)
    assert refused.headers["x-ratelimit-reset-tokens"] == "50s"
    now[0] = 160.0
    assert limiter.acquire(30).allowed


def test_limiter_settle_corrects_a_spend_only_while_it_is_in_the_window() -> None:
    now = [100.0]
    limiter = RateLimiter(rpm=None, tpm=100, window_s=60, clock=lambda: now[0])
    admitted = limiter.acquire(80)
    limiter.settle(admitted, 30)
    assert limiter.windows["tokens"].used == 30
    now[0] = 130.0
    assert limiter.acquire(70).allowed and not limiter.acquire(1).allowed
    now[0] = 161.0
    limiter.settle(admitted, 90)
    assert limiter.windows["tokens"].used == 70
    limiter.reset()
    limiter.settle(limiter.acquire(40), 10)
    assert limiter.windows["tokens"].used == 10


def free_port() -> int:
    """Return a TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def served_emulator() -> Iterator[str]:
    """Run `python -m infra.emulator` in a subprocess and yield its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "infra.emulator", "--port", str(port)]
    process = subprocess.Popen(command, cwd=REPO_ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{url}/emulator/stats", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


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
