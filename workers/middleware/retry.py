"""Retries: exponential backoff with jitter for errors that another try may fix."""

from __future__ import annotations

import random

from workers.chain import CallContext, Middleware

MAX_SPREAD_S = 60.0  # the most a hand-back's return is spread by


def backoff_seconds(attempt: int, base_s: float, max_s: float, rng: random.Random) -> float:
    """Equal-jitter exponential backoff: half fixed, half random, capped at ``max_s``."""
    ceiling = min(max_s, base_s * 2 ** max(0, attempt - 1))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


class RetryWithBackoff(Middleware):
    """Sets ``ctx.retry_in`` when the failed attempt is retryable and attempts remain."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()

    def on_error(self, ctx: CallContext) -> None:
        error = ctx.error
        if ctx.route is not None and ctx.route.lane:
            return  # a provider batch's failure sends the job back to run live at once, no backoff
        if error is not None and not error.counts_as_attempt:
            # No call was made (no capacity): come back when capacity is due, spread by up to
            # 10 % so the waiting jobs do not all return at the same instant.
            # A long wait (a budget's next period) is spread by a minute at most, not hours.
            wait = getattr(error, "retry_after", None) or ctx.settings.backoff_base_s
            ctx.retry_in = wait + min(wait * 0.1, MAX_SPREAD_S) * self._rng.uniform(0, 1)
            return
        if error is None or not error.retryable or ctx.attempt >= ctx.settings.max_attempts:
            return
        delay = backoff_seconds(
            ctx.attempt, ctx.settings.backoff_base_s, ctx.settings.backoff_max_s, self._rng
        )
        provider_asked = getattr(error, "retry_after", None) or 0.0
        ctx.retry_in = max(delay, provider_asked)
