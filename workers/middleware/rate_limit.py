"""Rate limiting: take global capacity before the call, give back what was not used after.

Runs after routing. For the routed model, and then (when the tier allows it) for the other
models of its chain still worth a try, it asks the limiter for one request plus the call's
estimated tokens, leaving the reserve of the job's priority class. The first model with
capacity gets the call. If none has capacity within ``acquire_wait_s``, the job is handed
back (``CapacityExhausted``, which does not use up an attempt) to return when capacity is due.

After the call the grant is settled with the provider's reported usage, and the provider's
``x-ratelimit-*`` headers resync the bucket. A 429 with ``retry-after`` pauses the bucket for
every worker; a 429 that says nothing shrinks its limits (AIMD) when adaptive limits are on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from schemas.errors import CapacityExhausted, ExceedsRateLimit, ProviderRateLimited
from schemas.openai import ChatRequest, EmbeddingRequest
from schemas.settings import ModelConfig
from workers.chain import CallContext, Middleware, Route
from workers.middleware.routing import candidate_models
from workers.providers.registry import ProviderRegistry
from workers.ratelimit.headers import remaining_from
from workers.ratelimit.limiter import Decision, Grant, Limiter
from workers.ratelimit.policy import model_limits


@dataclass
class HeldCapacity:
    """The rate-limit capacity this attempt took for its call, until it is settled."""

    grant: Grant | None = None


class RateLimiting(Middleware):
    """Acquire before the call, settle and listen to the provider after it."""

    def __init__(
        self,
        limiter: Limiter,
        providers: ProviderRegistry,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limiter = limiter
        self.providers = providers
        self._sleep = sleep
        self._clock = clock

    def before_call(self, ctx: CallContext) -> None:
        assert ctx.route is not None
        settings = ctx.settings
        reserve = settings.rate_limits.reserve(ctx.job.priority)
        deadline = self._clock() + settings.rate_limits.acquire_wait_s
        while True:
            waits: list[float] = []
            for alias in self._candidates(ctx):
                model = settings.models[alias]
                limits = model_limits(model, settings.rate_limits)
                if not limits.limited:
                    self._route(ctx, alias, model, None)
                    return
                decision = self.limiter.acquire(model.bucket, limits, self._cost(ctx.request, model), reserve)
                if decision.granted:
                    self._route(ctx, alias, model, decision)
                    return
                if decision.reason != "too_large":
                    waits.append(decision.wait_s)
            if not waits:
                raise ExceedsRateLimit(
                    "The call needs more tokens than one rate-limit window of any model of the "
                    f"tier {ctx.job.tier!r} allows; lower max_tokens or shorten the prompt."
                )
            wait = min(waits)
            if self._clock() + wait > deadline:
                raise CapacityExhausted(
                    f"No model of tier {ctx.job.tier!r} has capacity for {wait:.1f}s; the job waits.",
                    retry_after=wait,
                )
            self._sleep(wait)

    def after_call(self, ctx: CallContext) -> None:
        held = ctx.state(HeldCapacity)
        grant, held.grant = held.grant, None
        if grant is not None and ctx.response is not None:
            self.limiter.settle(grant, ctx.response.completion.usage.total_tokens)
            self._resync(ctx, ctx.response.headers)

    def on_error(self, ctx: CallContext) -> None:
        held = ctx.state(HeldCapacity)
        grant, held.grant = held.grant, None
        if grant is None or ctx.route is None:
            return
        # The provider may have counted a call that failed: keep its estimate. No call made (a
        # later policy, such as a budget, stopped it): give the tokens back.
        self.limiter.settle(grant, None if ctx.called else 0)
        error = ctx.error
        if not isinstance(error, ProviderRateLimited):
            return
        bucket = ctx.route.model.bucket
        if error.retry_after:
            self.limiter.pause(bucket, error.retry_after)
        if not self._resync(ctx, error.headers) and not error.retry_after:
            self.limiter.penalize(bucket, model_limits(ctx.route.model, ctx.settings.rate_limits))

    def _candidates(self, ctx: CallContext) -> list[str]:
        assert ctx.route is not None
        tier = ctx.settings.tiers[ctx.job.tier]
        if not tier.fallback_on_exhaustion:
            return [ctx.route.alias]
        others = candidate_models(tier, ctx.request.model, ctx.job.attempt_log or [])
        return [ctx.route.alias, *(alias for alias in others if alias != ctx.route.alias)]

    def _cost(self, request: ChatRequest | EmbeddingRequest, model: ModelConfig) -> int:
        prompt = self.providers.get(model.provider).estimate_prompt_tokens(request)
        return prompt + (request.requested_max_tokens() or 0)

    def _route(self, ctx: CallContext, alias: str, model: ModelConfig, decision: Decision | None) -> None:
        if ctx.route is None or ctx.route.alias != alias:
            ctx.route = Route(alias=alias, model=model)
        ctx.state(HeldCapacity).grant = decision.grant if decision is not None else None

    def _resync(self, ctx: CallContext, headers: dict[str, str]) -> bool:
        assert ctx.route is not None
        limits = model_limits(ctx.route.model, ctx.settings.rate_limits)
        signals = remaining_from(headers)
        for signal in signals:
            self.limiter.resync(ctx.route.model.bucket, limits, signal.kind, signal.remaining, signal.reset_s)
        return bool(signals)
