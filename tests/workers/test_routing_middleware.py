"""Routing: the model of each attempt from the tier's fallback chain, and the default max_tokens."""

from __future__ import annotations

from pathlib import Path

import pytest
from chain_support import make_ctx, make_job
from tests_support import make_test_settings

from schemas.errors import MaxAttemptsExceeded, NoModelAvailable
from schemas.openai import ChatRequest
from schemas.settings import Settings, TierConfig
from workers.middleware.routing import Routing, next_model


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Test settings; nothing here touches Redis or a database."""
    return make_test_settings(tmp_path, "redis://127.0.0.1:6379/9")


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


def test_routing_fails_a_job_whose_tier_left_the_config(settings: Settings) -> None:
    ctx = make_ctx(settings, make_job(tier="retired"))

    with pytest.raises(NoModelAvailable, match="no longer configured"):
        Routing().before_call(ctx)
