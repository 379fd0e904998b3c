"""The provider emulator's rate limits: RPM and TPM windows per model, 429s with OpenAI's headers."""

from __future__ import annotations

import re
import time

import pytest
from emulator_support import RATE_HEADERS, chat, make_client, script

from infra.emulator.limits import RateLimiter, format_duration


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


def test_config_endpoint_changes_limits_at_run_time() -> None:
    client = make_client()
    assert "x-ratelimit-limit-requests" not in chat(client, "hi").headers
    config = client.post("/emulator/config", json={"rpm": 1, "latency_ms": 1}).json()
    assert config["rpm"] == 1 and config["latency_ms"] == 1
    assert [chat(client, "hi").status_code for _ in range(2)] == [200, 429]
    client.post("/emulator/config", json={"rpm": None})
    assert chat(client, "hi").status_code == 200


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
