"""The policy chain and its middleware: order, routing, retries and pricing, with no network."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from tests_support import make_test_settings

from schemas.errors import (
    CapacityExhausted,
    MaxAttemptsExceeded,
    NoModelAvailable,
    ProviderBadRequest,
    ProviderRateLimited,
    ProviderUnavailable,
    SwitchyardError,
)
from schemas.openai import ChatCompletion, ChatRequest
from schemas.settings import Settings, TierConfig
from schemas.tables import Job, utcnow
from workers.chain import CallContext, Middleware, PolicyChain, Route
from workers.middleware.retry import RetryWithBackoff, backoff_seconds
from workers.middleware.routing import Routing, next_model
from workers.middleware.usage import UsageRecording, call_cost_usd
from workers.providers.base import ProviderResponse


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Test settings; nothing here touches Redis or a database."""
    return make_test_settings(tmp_path, "redis://127.0.0.1:6379/9")


def make_job(tier: str = "small", attempts: int = 1, attempt_log: list[dict[str, Any]] | None = None) -> Job:
    now = utcnow()
    return Job(
        id="job_test",
        tenant_id="ten_test",
        tier=tier,
        status="running",
        request={"messages": [{"role": "user", "content": "Hi"}]},
        attempts=attempts,
        attempt_log=attempt_log or [],
        job_metadata={},
        created_at=now,
        updated_at=now,
    )


def make_ctx(settings: Settings, job: Job | None = None, **request: Any) -> CallContext:
    job = job or make_job()
    body = {"messages": [{"role": "user", "content": "Hi"}], **request}
    return CallContext(job=job, settings=settings, request=ChatRequest.model_validate(body))


def completion(prompt_tokens: int = 10, completion_tokens: int = 5) -> ProviderResponse:
    body = {
        "id": "chatcmpl-1",
        "created": 1,
        "model": "emu-a",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"}}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
    return ProviderResponse(completion=ChatCompletion.model_validate(body))


class Recorder(Middleware):
    """Writes every hook it runs into a shared journal; may misbehave on request."""

    def __init__(
        self,
        name: str,
        journal: list[str],
        raise_before: SwitchyardError | None = None,
        answer: ProviderResponse | None = None,
    ) -> None:
        self.name = name
        self.journal = journal
        self.raise_before = raise_before
        self.answer = answer

    def before_call(self, ctx: CallContext) -> None:
        self.journal.append(f"{self.name}.before")
        if self.raise_before is not None:
            raise self.raise_before
        if self.answer is not None:
            ctx.response = self.answer

    def after_call(self, ctx: CallContext) -> None:
        self.journal.append(f"{self.name}.after")

    def on_error(self, ctx: CallContext) -> None:
        self.journal.append(f"{self.name}.on_error")


def recording_call(journal: list[str], error: SwitchyardError | None = None) -> Any:
    def call(ctx: CallContext) -> ProviderResponse:
        journal.append("call")
        if error is not None:
            raise error
        return completion()

    return call


# PolicyChain


def test_chain_runs_before_in_order_and_after_in_reverse(settings: Settings) -> None:
    journal: list[str] = []
    chain = PolicyChain([Recorder(name, journal) for name in "abc"])
    ctx = make_ctx(settings)

    chain.run(ctx, recording_call(journal))

    assert journal == ["a.before", "b.before", "c.before", "call", "c.after", "b.after", "a.after"]
    assert ctx.response is not None and ctx.error is None
    assert ctx.latency_ms >= 0


def test_chain_runs_on_error_in_reverse_when_call_fails(settings: Settings) -> None:
    journal: list[str] = []
    chain = PolicyChain([Recorder(name, journal) for name in "abc"])
    ctx = make_ctx(settings)
    error = ProviderUnavailable("down")

    chain.run(ctx, recording_call(journal, error))

    assert journal == ["a.before", "b.before", "c.before", "call", "c.on_error", "b.on_error", "a.on_error"]
    assert ctx.error is error
    assert ctx.response is None


def test_chain_runs_on_error_only_on_entered_middleware(settings: Settings) -> None:
    journal: list[str] = []
    failing = Recorder("b", journal, raise_before=ProviderBadRequest("no"))
    chain = PolicyChain([Recorder("a", journal), failing, Recorder("c", journal)])
    ctx = make_ctx(settings)

    chain.run(ctx, recording_call(journal))

    # b raised in before_call, so it never entered; c never ran; the call never happened.
    assert journal == ["a.before", "b.before", "a.on_error"]
    assert isinstance(ctx.error, ProviderBadRequest)


def test_chain_skips_call_when_before_call_sets_response(settings: Settings) -> None:
    journal: list[str] = []
    cached = completion(prompt_tokens=1)
    chain = PolicyChain(
        [Recorder("a", journal), Recorder("b", journal, answer=cached), Recorder("c", journal)]
    )
    ctx = make_ctx(settings)

    chain.run(ctx, recording_call(journal))

    assert journal == ["a.before", "b.before", "b.after", "a.after"]
    assert ctx.response is cached


def test_chain_lets_unexpected_exceptions_propagate(settings: Settings) -> None:
    journal: list[str] = []
    chain = PolicyChain([Recorder("a", journal)])

    def broken(ctx: CallContext) -> ProviderResponse:
        raise KeyError("a bug, not a provider error")

    with pytest.raises(KeyError):
        chain.run(make_ctx(settings), broken)
    assert journal == ["a.before"]


# Routing


CHAIN = TierConfig.model_validate({"models": ["a", "b", "c"], "attempts_per_model": 2})


def failed(model: str, outcome: str = "provider_unavailable") -> dict[str, object]:
    return {"model": model, "outcome": outcome}


def test_next_model_starts_with_first_model_of_tier() -> None:
    assert next_model(CHAIN, None, []) == "a"


def test_next_model_keeps_model_until_attempts_per_model_failures() -> None:
    assert next_model(CHAIN, None, [failed("a")]) == "a"
    assert next_model(CHAIN, None, [failed("a"), failed("a")]) == "b"
    assert next_model(CHAIN, None, [failed("a"), failed("a"), failed("b"), failed("b")]) == "c"


def test_next_model_does_not_count_successes_as_failures() -> None:
    history: list[dict[str, object]] = [{"model": "a", "outcome": "ok"}, {"model": "a", "outcome": "ok"}]
    history.append(failed("a"))
    assert next_model(CHAIN, None, history) == "a"


@pytest.mark.parametrize("outcome", ["provider_authentication_failed", "context_length_exceeded"])
def test_next_model_skips_model_after_fatal_error(outcome: str) -> None:
    assert next_model(CHAIN, None, [failed("a", outcome)]) == "b"


def test_next_model_tries_requested_model_first() -> None:
    assert next_model(CHAIN, "b", []) == "b"
    assert next_model(CHAIN, "b", [failed("b"), failed("b")]) == "a"
    assert next_model(CHAIN, "b", [failed("b"), failed("b"), failed("a"), failed("a")]) == "c"


def test_next_model_ignores_requested_model_outside_tier() -> None:
    assert next_model(CHAIN, "zzz", []) == "a"


def test_next_model_returns_none_when_every_model_is_exhausted() -> None:
    history = [failed(model) for model in "aabbc"] + [failed("c", "provider_authentication_failed")]
    assert next_model(CHAIN, None, history) is None


def test_routing_sets_route_and_default_max_tokens(settings: Settings) -> None:
    ctx = make_ctx(settings)

    Routing().before_call(ctx)

    assert ctx.route is not None
    assert ctx.route.alias == "emu-a"
    assert ctx.route.provider == "emulator"
    assert ctx.route.model == settings.models["emu-a"]
    assert isinstance(ctx.request, ChatRequest)
    assert ctx.request.max_tokens == settings.tiers["small"].default_max_tokens == 64


def test_routing_keeps_max_tokens_the_client_asked_for(settings: Settings) -> None:
    explicit = make_ctx(settings, max_tokens=7)
    completion_limit = make_ctx(settings, max_completion_tokens=9)

    Routing().before_call(explicit)
    Routing().before_call(completion_limit)

    assert isinstance(explicit.request, ChatRequest) and isinstance(completion_limit.request, ChatRequest)
    assert explicit.request.max_tokens == 7
    assert completion_limit.request.max_tokens is None
    assert completion_limit.request.requested_max_tokens() == 9


def test_routing_falls_back_to_next_model_of_tier(settings: Settings) -> None:
    job = make_job(attempt_log=[failed("emu-a")])  # tier small: one attempt per model
    ctx = make_ctx(settings, job)

    Routing().before_call(ctx)

    assert ctx.route is not None and ctx.route.alias == "emu-b"


def test_routing_raises_max_attempts_when_tier_is_exhausted(settings: Settings) -> None:
    job = make_job(attempt_log=[failed("emu-a"), failed("emu-b", "rate_limited")])

    with pytest.raises(MaxAttemptsExceeded, match="rate_limited"):
        Routing().before_call(make_ctx(settings, job))


# RetryWithBackoff


def failed_ctx(settings: Settings, error: SwitchyardError, attempts: int = 1) -> CallContext:
    ctx = make_ctx(settings, make_job(attempts=attempts))
    ctx.error = error
    return ctx


def test_retry_sets_retry_in_for_retryable_error(settings: Settings) -> None:
    ctx = failed_ctx(settings, ProviderUnavailable("down"), attempts=3)

    RetryWithBackoff(random.Random(1)).on_error(ctx)

    ceiling = settings.backoff_base_s * 4
    assert ctx.retry_in is not None
    assert ceiling / 2 <= ctx.retry_in <= ceiling


def test_retry_honours_provider_retry_after(settings: Settings) -> None:
    ctx = failed_ctx(settings, ProviderRateLimited("slow down", retry_after=42.0))

    RetryWithBackoff(random.Random(1)).on_error(ctx)

    assert ctx.retry_in == 42.0


def test_retry_keeps_backoff_when_it_exceeds_retry_after(settings: Settings) -> None:
    ctx = failed_ctx(settings, ProviderRateLimited("slow down", retry_after=0.001), attempts=5)

    RetryWithBackoff(random.Random(1)).on_error(ctx)

    assert ctx.retry_in is not None and ctx.retry_in >= settings.backoff_base_s * 16 / 2


def test_retry_not_set_for_non_retryable_error(settings: Settings) -> None:
    ctx = failed_ctx(settings, ProviderBadRequest("bad"))

    RetryWithBackoff(random.Random(1)).on_error(ctx)

    assert ctx.retry_in is None


def test_retry_not_set_once_attempts_reach_max_attempts(settings: Settings) -> None:
    last = failed_ctx(settings, ProviderUnavailable("down"), attempts=settings.max_attempts)
    one_before = failed_ctx(settings, ProviderUnavailable("down"), attempts=settings.max_attempts - 1)

    RetryWithBackoff(random.Random(1)).on_error(last)
    RetryWithBackoff(random.Random(1)).on_error(one_before)

    assert last.retry_in is None
    assert one_before.retry_in is not None


def test_backoff_stays_within_jittered_exponential_bounds() -> None:
    rng = random.Random(1234)
    base_s, max_s = 0.5, 20.0
    delays = []
    for attempt in range(1, 16):
        ceiling = min(max_s, base_s * 2 ** (attempt - 1))
        delay = backoff_seconds(attempt, base_s, max_s, rng)
        assert ceiling / 2 <= delay <= ceiling, (attempt, delay)
        delays.append(delay)
    assert max(delays) <= max_s
    assert delays[-1] >= max_s / 2
    assert len(set(delays)) == len(delays)  # jitter: no two waits are the same


def test_backoff_is_reproducible_with_a_seeded_random() -> None:
    first = [backoff_seconds(n, 1.0, 60.0, random.Random(7)) for n in range(1, 8)]
    second = [backoff_seconds(n, 1.0, 60.0, random.Random(7)) for n in range(1, 8)]
    assert first == second


def test_backoff_treats_attempt_zero_as_first_attempt() -> None:
    assert 0.5 <= backoff_seconds(0, 1.0, 60.0, random.Random(3)) <= 1.0


# UsageRecording


def test_usage_records_nothing_when_no_call_was_made(settings: Settings) -> None:
    ctx = make_ctx(settings)
    ctx.route = Route(alias="emu-a", model=settings.models["emu-a"])
    ctx.error = CapacityExhausted("no capacity", retry_after=3.0)

    UsageRecording().on_error(ctx)

    assert ctx.attempt_record == {}


def test_usage_cost_is_tokens_times_prices_per_million(settings: Settings) -> None:
    model = settings.models["emu-b"]  # 1.0 in, 2.0 out per million tokens
    ctx = make_ctx(settings, make_job(attempts=2))
    ctx.route = Route(alias="emu-b", model=model)
    ctx.response = completion(prompt_tokens=1_000, completion_tokens=250_000)
    ctx.latency_ms = 12.5

    UsageRecording().after_call(ctx)

    assert ctx.cost_usd == pytest.approx((1_000 * 1.0 + 250_000 * 2.0) / 1e6)
    assert ctx.attempt_record == {
        "attempt": 2,
        "model": "emu-b",
        "provider": "emulator",
        "outcome": "ok",
        "latency_ms": 12.5,
        "prompt_tokens": 1_000,
        "completion_tokens": 250_000,
        "cost_usd": pytest.approx(0.501),
    }


def test_call_cost_of_free_model_is_zero(settings: Settings) -> None:
    usage = completion(prompt_tokens=123, completion_tokens=456).completion.usage
    assert call_cost_usd(settings.models["emu-slow"], usage) == 0.0
    assert call_cost_usd(settings.models["emu-a"], usage) == pytest.approx((123 * 0.5 + 456 * 1.5) / 1e6)


def test_usage_records_failed_attempt_with_error_code_and_no_tokens(settings: Settings) -> None:
    ctx = make_ctx(settings)
    ctx.route = Route(alias="emu-a", model=settings.models["emu-a"])
    ctx.called = True
    ctx.error = ProviderRateLimited("slow down")

    UsageRecording().on_error(ctx)

    assert ctx.attempt_record["outcome"] == "rate_limited"
    assert (ctx.attempt_record["prompt_tokens"], ctx.attempt_record["completion_tokens"]) == (0, 0)
    assert ctx.cost_usd == 0.0


def test_usage_records_nothing_when_no_model_was_routed(settings: Settings) -> None:
    ctx = make_ctx(settings)
    ctx.error = MaxAttemptsExceeded("exhausted")

    UsageRecording().on_error(ctx)

    assert ctx.attempt_record == {}


def test_routing_fails_a_job_whose_tier_left_the_config(settings: Settings) -> None:
    ctx = make_ctx(settings, make_job(tier="retired"))

    with pytest.raises(NoModelAvailable, match="no longer configured"):
        Routing().before_call(ctx)
