"""The RateLimiting middleware with the real Lua limiter on Redis and a scripted provider."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from tests_support import make_test_settings

from schemas.errors import CapacityExhausted, ExceedsRateLimit, ProviderRateLimited, ProviderUnavailable
from schemas.openai import ChatCompletion, ChatRequest
from schemas.settings import Settings
from schemas.tables import Job, utcnow
from workers.chain import CallContext, PolicyChain
from workers.keys import RedisKeys
from workers.middleware.rate_limit import HeldCapacity, RateLimiting
from workers.middleware.retry import RetryWithBackoff
from workers.middleware.routing import Routing
from workers.providers.base import ProviderResponse
from workers.ratelimit.headers import parse_duration, remaining_from
from workers.ratelimit.limiter import Limiter
from workers.ratelimit.policy import build_limiter, model_limits
from workers.ratelimit.tokens import estimate_prompt_tokens

PRIMARY, BACKUP = "emu-rl", "emu-rl-backup"  # 10 requests and 4,000 tokens per window each


class Estimates:
    """Stands in for the provider registry: only the token estimate is used before a call."""

    def get(self, name: str) -> Estimates:
        return self

    def estimate_prompt_tokens(self, request: ChatRequest) -> int:
        return estimate_prompt_tokens(request)


@pytest.fixture
def settings(tmp_path: Path, redis_url: str) -> Settings:
    return make_test_settings(tmp_path, redis_url)


@pytest.fixture
def limiter(settings: Settings) -> Iterator[Limiter]:
    redis = Redis.from_url(settings.redis_url)
    yield build_limiter(settings, redis, RedisKeys(settings.key_prefix))
    for key in redis.scan_iter(f"{settings.key_prefix}:*"):
        redis.delete(key)
    redis.close()


class Clock:
    """A fake clock whose sleep only advances time; Redis keeps its own clock."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def make_ctx(settings: Settings, priority: str = "live", max_tokens: int = 100) -> CallContext:
    now = utcnow()
    body = {"messages": [{"role": "user", "content": "Summarise the memo."}], "max_tokens": max_tokens}
    job = Job(
        id=f"job_{uuid.uuid4().hex[:8]}",
        tenant_id="ten_test",
        tier="limited",
        priority=priority,
        status="running",
        request=body,
        attempts=1,
        attempt_log=[],
        job_metadata={},
        created_at=now,
        updated_at=now,
    )
    return CallContext(job=job, settings=settings, request=ChatRequest.model_validate(body))


def middleware(limiter: Limiter, clock: Clock | None = None) -> RateLimiting:
    clock = clock or Clock()
    return RateLimiting(limiter, Estimates(), sleep=clock.sleep, clock=clock)  # type: ignore[arg-type]


def reply(total_tokens: int = 30, headers: dict[str, str] | None = None) -> ProviderResponse:
    completion = ChatCompletion.model_validate(
        {
            "id": "c",
            "created": 0,
            "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
            "usage": {
                "prompt_tokens": 20,
                "completion_tokens": total_tokens - 20,
                "total_tokens": total_tokens,
            },
        }
    )
    return ProviderResponse(completion=completion, headers=headers or {})


def run(chain: PolicyChain, ctx: CallContext, answer: Any = None) -> CallContext:
    def call(_: CallContext) -> ProviderResponse:
        if isinstance(answer, Exception):
            raise answer
        return answer or reply()

    chain.run(ctx, call)
    return ctx


def state(limiter: Limiter, settings: Settings, alias: str) -> Any:
    model = settings.models[alias]
    return limiter.snapshot(model.bucket, model_limits(model, settings.rate_limits))


def test_a_call_takes_a_request_and_its_estimate_then_keeps_only_its_usage(
    settings: Settings, limiter: Limiter
) -> None:
    ctx = run(PolicyChain([Routing(), middleware(limiter)]), make_ctx(settings), reply(total_tokens=30))

    assert ctx.error is None and ctx.route is not None and ctx.route.alias == PRIMARY
    bucket = state(limiter, settings, PRIMARY)
    assert (bucket.requests_used, bucket.tokens_used, bucket.in_flight) == (1, 30, 0)


def test_an_exhausted_model_sends_the_job_to_the_next_model_with_capacity(
    settings: Settings, limiter: Limiter
) -> None:
    chain = PolicyChain([Routing(), middleware(limiter)])
    routed = [run(chain, make_ctx(settings)).route for _ in range(12)]

    assert [route.alias for route in routed if route] == [PRIMARY] * 10 + [BACKUP] * 2


def test_without_capacity_the_job_is_handed_back_for_when_capacity_is_due(
    settings: Settings, limiter: Limiter
) -> None:
    chain = PolicyChain([RetryWithBackoff(random.Random(1)), Routing(), middleware(limiter)])
    for _ in range(20):
        assert run(chain, make_ctx(settings)).error is None

    ctx = run(chain, make_ctx(settings))

    assert isinstance(ctx.error, CapacityExhausted) and not ctx.called
    window = settings.rate_limits.window_s + settings.rate_limits.window_margin_s
    assert ctx.retry_in is not None and window * 0.9 < ctx.retry_in <= window * 1.1


def test_a_short_wait_is_waited_out_instead_of_handing_back(settings: Settings, limiter: Limiter) -> None:
    for alias in (PRIMARY, BACKUP):  # both models paused for less than acquire_wait_s (2 s)
        limiter.pause(settings.models[alias].bucket, 0.3)
    chain = PolicyChain([Routing(), RateLimiting(limiter, Estimates())])  # type: ignore[arg-type]

    started = time.monotonic()
    ctx = run(chain, make_ctx(settings))

    assert ctx.error is None and ctx.called
    assert 0.25 <= time.monotonic() - started < settings.rate_limits.acquire_wait_s


def test_batch_stops_at_its_reserve_while_live_may_use_it(settings: Settings, limiter: Limiter) -> None:
    chain = PolicyChain([Routing(), middleware(limiter)])
    batch = [run(chain, make_ctx(settings, "batch")) for _ in range(20)]
    assert sum(ctx.error is None for ctx in batch) == 16  # 8 of 10 on each model
    live = [run(chain, make_ctx(settings, "live")) for _ in range(5)]
    assert sum(ctx.error is None for ctx in live) == 4


def test_a_429_with_retry_after_pauses_the_model_for_every_worker(
    settings: Settings, limiter: Limiter
) -> None:
    chain = PolicyChain([Routing(), middleware(limiter)])
    run(chain, make_ctx(settings), ProviderRateLimited("slow down", retry_after=5.0))

    assert 4.5 < state(limiter, settings, PRIMARY).paused_s <= 5.0
    # Another worker's next job goes to the backup model instead.
    route = run(chain, make_ctx(settings)).route
    assert route is not None and route.alias == BACKUP


def test_a_429_without_headers_shrinks_the_limits_in_force(settings: Settings, limiter: Limiter) -> None:
    chain = PolicyChain([Routing(), middleware(limiter)])
    run(chain, make_ctx(settings), ProviderRateLimited("slow down"))

    assert state(limiter, settings, PRIMARY).factor == pytest.approx(0.5, abs=0.01)


def test_rate_limit_headers_resync_the_bucket(settings: Settings, limiter: Limiter) -> None:
    chain = PolicyChain([Routing(), middleware(limiter)])
    headers = {
        "x-ratelimit-remaining-requests": "3",
        "x-ratelimit-remaining-tokens": "3900",
        "x-ratelimit-reset-requests": "1.5s",
        "x-ratelimit-reset-tokens": "1.5s",
    }
    run(chain, make_ctx(settings), reply(total_tokens=30, headers=headers))

    bucket = state(limiter, settings, PRIMARY)
    assert bucket.requests_used == 7  # the provider says 3 are left, not our 9
    assert bucket.tokens_used == 100  # 30 of ours plus 70 the provider counted


def test_other_errors_free_the_in_flight_slot_and_keep_the_estimate(
    settings: Settings, limiter: Limiter
) -> None:
    ctx = run(PolicyChain([Routing(), middleware(limiter)]), make_ctx(settings), ProviderUnavailable("down"))

    assert isinstance(ctx.error, ProviderUnavailable)
    bucket = state(limiter, settings, PRIMARY)
    assert bucket.in_flight == 0 and bucket.tokens_used == estimate_prompt_tokens(ctx.request) + 100
    assert bucket.paused_s == 0 and bucket.factor == 1.0


def test_a_call_larger_than_every_window_fails_with_a_clear_code(
    settings: Settings, limiter: Limiter
) -> None:
    ctx = run(PolicyChain([Routing(), middleware(limiter)]), make_ctx(settings, max_tokens=5000))

    assert isinstance(ctx.error, ExceedsRateLimit) and ctx.error.code == "exceeds_rate_limit"


def test_models_without_limits_are_not_counted(settings: Settings, limiter: Limiter) -> None:
    ctx = make_ctx(settings)
    ctx.job.tier = "small"
    held_during_call: list[object] = []

    def call(during: CallContext) -> ProviderResponse:
        held_during_call.append(during.state(HeldCapacity).grant)
        return reply()

    PolicyChain([Routing(), middleware(limiter)]).run(ctx, call)

    assert ctx.error is None and held_during_call == [None]  # no capacity was taken for the call


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("1s", 1.0), ("6m0s", 360.0), ("1h2m3.5s", 3723.5), ("2", 2.0), ("soon", None)],
)
def test_openai_durations_parse(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


def test_remaining_headers_are_read_case_insensitively_and_bad_ones_skipped() -> None:
    found = remaining_from({"X-RateLimit-Remaining-Requests": "4", "x-ratelimit-remaining-tokens": "lots"})
    assert [(r.kind, r.remaining, r.reset_s) for r in found] == [("requests", 4, 0.0)]


def test_token_estimate_is_a_quarter_of_the_utf8_bytes_plus_message_overheads() -> None:
    request = ChatRequest.model_validate(
        {"messages": [{"role": "system", "content": "x" * 40}, {"role": "user", "content": "é" * 10}]}
    )
    assert estimate_prompt_tokens(request) == 3 + (4 + 10) + (4 + 5)
