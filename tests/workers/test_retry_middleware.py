"""RetryWithBackoff: when a failed attempt is tried again, and the jittered exponential backoff."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from chain_support import make_ctx, make_job
from tests_support import make_test_settings

from schemas.errors import ProviderBadRequest, ProviderRateLimited, ProviderUnavailable, SwitchyardError
from schemas.settings import Settings
from workers.chain import CallContext, Route
from workers.middleware.retry import RetryWithBackoff, backoff_seconds


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Test settings; nothing here touches Redis or a database."""
    return make_test_settings(tmp_path, "redis://127.0.0.1:6379/9")


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


def test_a_provider_batch_failure_gets_no_backoff(settings: Settings) -> None:
    ctx = failed_ctx(settings, ProviderUnavailable("down"))
    ctx.route = Route(alias="emu-a", model=settings.models["emu-a"], provider_batch="pbat_1")

    RetryWithBackoff(random.Random(1)).on_error(ctx)

    assert ctx.retry_in is None  # the lane sends the job back to run live at once
