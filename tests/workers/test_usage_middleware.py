"""UsageRecording: the price of a call, its attempt entry and its usage row."""

from __future__ import annotations

from pathlib import Path

import pytest
from chain_support import completion, make_ctx, make_job
from tests_support import make_test_settings

from schemas.errors import CapacityExhausted, MaxAttemptsExceeded, ProviderRateLimited
from schemas.settings import Settings
from workers.chain import Route
from workers.middleware.usage import UsageRecording, call_cost_usd


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Test settings; nothing here touches Redis or a database."""
    return make_test_settings(tmp_path, "redis://127.0.0.1:6379/9")


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


def test_usage_row_matches_the_attempt_entry(settings: Settings) -> None:
    ctx = make_ctx(settings, make_job(attempts=3))
    ctx.route = Route(alias="emu-b", model=settings.models["emu-b"])
    ctx.response = completion(prompt_tokens=40, completion_tokens=2)
    ctx.latency_ms = 7.5

    UsageRecording().after_call(ctx)

    row = ctx.usage_row
    assert row is not None
    assert (row.job_id, row.tenant_id, row.tier, row.attempt) == ("job_test", "ten_test", "small", 3)
    record = ctx.attempt_record
    assert (row.model, row.provider, row.outcome) == (record["model"], record["provider"], "ok")
    assert (row.prompt_tokens, row.completion_tokens, row.latency_ms) == (40, 2, 7.5)
    assert row.cost_usd == record["cost_usd"] == round(ctx.cost_usd, 8)


def test_a_provider_batch_call_is_priced_at_batch_prices_and_marked_with_its_lane(settings: Settings) -> None:
    model = settings.models["emu-b"]  # 1.0 in, 2.0 out live; half of that through the Batch API
    ctx = make_ctx(settings)
    ctx.route = Route(alias="emu-b", model=model, provider_batch="pbat_1")
    ctx.response = completion(prompt_tokens=1_000_000, completion_tokens=1_000_000)

    UsageRecording().after_call(ctx)

    assert ctx.cost_usd == pytest.approx(1.5) == call_cost_usd(model, ctx.response.completion.usage, True)
    assert ctx.attempt_record["lane"] == "provider_batch" and ctx.attempt_record["provider_batch"] == "pbat_1"
    assert ctx.usage_row is not None and ctx.usage_row.cost_usd == pytest.approx(1.5)


def test_a_live_call_has_no_lane_in_its_entry(settings: Settings) -> None:
    ctx = make_ctx(settings)
    ctx.route = Route(alias="emu-b", model=settings.models["emu-b"])
    ctx.response = completion()

    UsageRecording().after_call(ctx)

    assert "lane" not in ctx.attempt_record and "provider_batch" not in ctx.attempt_record
