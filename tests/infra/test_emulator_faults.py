"""The provider emulator's scripted faults, injected latency and random failures."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from emulator_support import chat, make_client, script
from tests_support import EMULATOR_KEY

from infra.emulator import EmulatorConfig, create_app


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
