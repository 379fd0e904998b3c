"""AttemptMetrics in a real chain: calls, tokens, cost, retries, fallbacks, hand-backs, TTFT."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from chain_support import completion, make_ctx, make_job
from prometheus_client import REGISTRY
from tests_support import make_test_settings

from schemas.errors import (
    CapacityExhausted,
    ProviderRateLimited,
    ProviderUnavailable,
    SwitchyardError,
    TenantBusy,
)
from schemas.settings import Settings
from workers.chain import CallContext, Middleware, PolicyChain, ProviderCall, Route
from workers.middleware.metrics import AttemptMetrics
from workers.middleware.retry import RetryWithBackoff
from workers.middleware.usage import UsageRecording
from workers.providers.base import AnyResponse


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class RouteTo(Middleware):
    """Routes every attempt to one model, as Routing would."""

    def __init__(self, alias: str) -> None:
        self.alias = alias

    def before_call(self, ctx: CallContext) -> None:
        ctx.route = Route(self.alias, ctx.settings.models[self.alias])


class RaiseBefore(Middleware):
    def __init__(self, error: Exception) -> None:
        self.error = error

    def before_call(self, ctx: CallContext) -> None:
        raise self.error


@pytest.fixture
def settings(tmp_path: Path, redis_url: str) -> Settings:
    return make_test_settings(tmp_path, redis_url)


def chain(alias: str = "emu-a", *extra: Middleware) -> PolicyChain:
    return PolicyChain([AttemptMetrics(), RetryWithBackoff(), UsageRecording(), RouteTo(alias), *extra])


def answered(ctx: CallContext) -> AnyResponse:
    return completion(prompt_tokens=12, completion_tokens=7)


def test_a_call_counts_its_latency_tokens_cost_and_first_attempt_wait(settings: Settings) -> None:
    job = make_job(tier="small")
    job.started_at = job.created_at + timedelta(seconds=3)
    before = {
        "calls": sample(
            "switchyard_provider_call_seconds_count",
            tier="small",
            model="emu-a",
            provider="emulator",
            outcome="ok",
        ),
        "prompt": sample(
            "switchyard_tokens_total", tier="small", model="emu-a", provider="emulator", direction="prompt"
        ),
        "completion": sample(
            "switchyard_tokens_total",
            tier="small",
            model="emu-a",
            provider="emulator",
            direction="completion",
        ),
        "cost": sample("switchyard_cost_usd_total", tier="small", model="emu-a", provider="emulator"),
        "wait": sample("switchyard_job_queue_wait_seconds_sum", tier="small", priority="live"),
    }
    ctx = make_ctx(settings, job)
    chain().run(ctx, answered)
    assert ctx.error is None and ctx.cost_usd > 0
    labels = {"tier": "small", "model": "emu-a", "provider": "emulator"}
    assert sample("switchyard_provider_call_seconds_count", **labels, outcome="ok") == before["calls"] + 1
    assert sample("switchyard_tokens_total", **labels, direction="prompt") == before["prompt"] + 12
    assert sample("switchyard_tokens_total", **labels, direction="completion") == before["completion"] + 7
    assert sample("switchyard_cost_usd_total", **labels) == pytest.approx(before["cost"] + ctx.cost_usd)
    assert sample("switchyard_job_queue_wait_seconds_sum", tier="small", priority="live") == pytest.approx(
        before["wait"] + 3
    )


def test_a_429_counts_a_rate_limit_a_retry_and_the_call_by_its_code(settings: Settings) -> None:
    def limited(ctx: CallContext) -> AnyResponse:
        raise ProviderRateLimited("slow down")

    before = (
        sample("switchyard_provider_rate_limited_total", model="emu-a", provider="emulator"),
        sample("switchyard_retries_total", tier="small", code="rate_limited"),
        sample(
            "switchyard_provider_call_seconds_count",
            tier="small",
            model="emu-a",
            provider="emulator",
            outcome="rate_limited",
        ),
    )
    ctx = make_ctx(settings, make_job(tier="small"))
    chain().run(ctx, limited)
    assert ctx.retry_in is not None
    after = (
        sample("switchyard_provider_rate_limited_total", model="emu-a", provider="emulator"),
        sample("switchyard_retries_total", tier="small", code="rate_limited"),
        sample(
            "switchyard_provider_call_seconds_count",
            tier="small",
            model="emu-a",
            provider="emulator",
            outcome="rate_limited",
        ),
    )
    assert after == tuple(value + 1 for value in before)


def test_the_last_attempt_that_fails_is_no_retry(settings: Settings) -> None:
    def down(ctx: CallContext) -> AnyResponse:
        raise ProviderUnavailable("down")

    job = make_job(tier="small", attempts=settings.max_attempts)
    before = sample("switchyard_retries_total", tier="small", code="provider_unavailable")
    chain().run(make_ctx(settings, job), down)
    assert sample("switchyard_retries_total", tier="small", code="provider_unavailable") == before


def test_a_call_to_another_model_than_the_last_attempt_is_a_fallback(settings: Settings) -> None:
    job = make_job(tier="small", attempts=2, attempt_log=[{"attempt": 1, "model": "emu-a", "outcome": "x"}])
    labels = {"tier": "small", "from_model": "emu-a", "to_model": "emu-b"}
    before = sample("switchyard_fallbacks_total", **labels)
    chain("emu-b").run(make_ctx(settings, job), answered)
    assert sample("switchyard_fallbacks_total", **labels) == before + 1
    chain("emu-a").run(make_ctx(settings, make_job(attempts=2, attempt_log=[{"model": "emu-a"}])), answered)
    assert sample("switchyard_fallbacks_total", **labels) == before + 1


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (CapacityExhausted("full", retry_after=1.0), "rate_limit"),
        (TenantBusy("busy", retry_after=1.0), "tenant_busy"),
    ],
)
def test_a_hand_back_for_capacity_counts_its_reason_and_no_call(
    settings: Settings, error: SwitchyardError, reason: str
) -> None:
    before = sample("switchyard_capacity_handbacks_total", tier="small", reason=reason)
    waits = sample("switchyard_job_queue_wait_seconds_count", tier="small", priority="live")
    calls = sample(
        "switchyard_provider_call_seconds_count",
        tier="small",
        model="emu-a",
        provider="emulator",
        outcome=error.code,
    )
    chain("emu-a", RaiseBefore(error)).run(make_ctx(settings, make_job(tier="small")), answered)
    assert sample("switchyard_capacity_handbacks_total", tier="small", reason=reason) == before + 1
    # Not an attempt: no queue wait observed (the real first attempt will be), no call.
    assert sample("switchyard_job_queue_wait_seconds_count", tier="small", priority="live") == waits
    assert (
        sample(
            "switchyard_provider_call_seconds_count",
            tier="small",
            model="emu-a",
            provider="emulator",
            outcome=error.code,
        )
        == calls
    )


def test_a_streaming_call_observes_its_time_to_first_token_once(settings: Settings) -> None:
    texts: list[str] = []

    class Sink(Middleware):
        def before_call(self, ctx: CallContext) -> None:
            ctx.on_text = texts.append

    def streaming(ctx: CallContext) -> AnyResponse:
        assert ctx.on_text is not None
        for piece in ("Hel", "lo"):
            ctx.on_text(piece)
        return completion()

    labels = {"tier": "small", "model": "emu-a", "provider": "emulator"}
    before = sample("switchyard_time_to_first_token_seconds_count", **labels)
    chain("emu-a", Sink()).run(make_ctx(settings, make_job(tier="small")), streaming)
    assert texts == ["Hel", "lo"]  # the sink still gets every delta
    assert sample("switchyard_time_to_first_token_seconds_count", **labels) == before + 1


def test_wrapping_is_skipped_for_calls_that_do_not_stream(settings: Settings) -> None:
    call: ProviderCall = answered
    assert AttemptMetrics().wrap_call(make_ctx(settings), call) is call
