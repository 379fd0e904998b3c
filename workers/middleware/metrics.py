"""Prometheus figures of each attempt: the call, its tokens and cost, retries and hand-backs.

First in the chain, so its ``on_error`` and ``after_call`` run last and see what the others
decided (the cost ``UsageRecording`` priced, the ``retry_in`` ``RetryWithBackoff`` set). A
provider batch's line goes through the same hooks (``PolicyChain.record``). A job's end is
counted where every end is announced (``Outcomes.announce_job``), not here.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from workers.chain import CallContext, Middleware, ProviderCall
from workers.metrics import definitions as m
from workers.providers.base import AnyResponse

# The capacity hand-backs' error codes, and the reason each is counted under.
HANDBACK_REASONS = {
    "capacity_exhausted": "rate_limit",
    "tenant_busy": "tenant_busy",
    "kill_switch": "kill_switch",
    "budget_wait": "budget_wait",
}
RATE_LIMITED = "rate_limited"


class AttemptMetrics(Middleware):
    """Records each attempt's figures in the process's metrics."""

    def wrap_call(self, ctx: CallContext, call: ProviderCall) -> ProviderCall:
        if ctx.on_text is None:
            return call

        def timed_first_token(inner: CallContext) -> AnyResponse:
            inner.on_text = _first_token_timer(inner, inner.on_text, time.perf_counter())
            return call(inner)

        return timed_first_token

    def after_call(self, ctx: CallContext) -> None:
        self._first_attempt(ctx)
        if not ctx.called or ctx.route is None or ctx.response is None:
            return  # a semantic hit: counted by the cache, ended by the announcement
        tier, route = ctx.job.tier, ctx.route
        usage = ctx.response.completion.usage
        m.provider_call.labels(tier, route.alias, route.provider, "ok").observe(ctx.latency_ms / 1000)
        m.tokens.labels(tier, route.alias, route.provider, "prompt").inc(usage.prompt_tokens)
        m.tokens.labels(tier, route.alias, route.provider, "completion").inc(usage.completion_tokens)
        m.cost_usd.labels(tier, route.alias, route.provider).inc(ctx.cost_usd)
        self._fallback(ctx)

    def on_error(self, ctx: CallContext) -> None:
        error, tier = ctx.error, ctx.job.tier
        assert error is not None
        if not error.counts_as_attempt:
            m.capacity_handbacks.labels(tier, HANDBACK_REASONS.get(error.code, error.code)).inc()
            return
        self._first_attempt(ctx)
        if ctx.retry_in is not None:
            m.retries.labels(tier, error.code).inc()
        if not ctx.called or ctx.route is None:
            return
        route = ctx.route
        m.provider_call.labels(tier, route.alias, route.provider, error.code).observe(ctx.latency_ms / 1000)
        if error.code == RATE_LIMITED:
            m.provider_rate_limited.labels(route.alias, route.provider).inc()
        self._fallback(ctx)

    @staticmethod
    def _first_attempt(ctx: CallContext) -> None:
        # The job's first real attempt (a hand-back for capacity does not count as one).
        job = ctx.job
        if ctx.attempt == 1 and job.started_at is not None and job.created_at is not None:
            wait = (job.started_at - job.created_at).total_seconds()
            m.job_queue_wait.labels(job.tier, job.priority).observe(max(wait, 0.0))

    @staticmethod
    def _fallback(ctx: CallContext) -> None:
        assert ctx.route is not None
        earlier = [entry.get("model") for entry in ctx.job.attempt_log or [] if entry.get("model")]
        if earlier and earlier[-1] != ctx.route.alias:
            m.fallbacks.labels(ctx.job.tier, earlier[-1], ctx.route.alias).inc()


def _first_token_timer(
    ctx: CallContext, sink: Callable[[str], None] | None, started: float
) -> Callable[[str], None]:
    """``sink``, observing the time to its first delta once."""
    seen = False

    def on_text(text: str) -> None:
        nonlocal seen
        if not seen and ctx.route is not None:
            seen = True
            elapsed = time.perf_counter() - started
            m.time_to_first_token.labels(ctx.job.tier, ctx.route.alias, ctx.route.provider).observe(elapsed)
        if sink is not None:
            sink(text)

    return on_text
