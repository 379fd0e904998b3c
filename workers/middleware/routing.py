"""Routing: pick the model for this attempt from the tier's fallback chain.

Only models of the job's kind (chat or embedding) are candidates. Chat requests without
``max_tokens`` get the tier's default. Each model gets
``attempts_per_model`` tries; a model that failed with an error that
retrying cannot fix (a bad request, bad credentials) is skipped. The request's ``model``,
if it names one of the tier's aliases, goes first.
"""

from __future__ import annotations

from collections import Counter

from schemas.errors import MaxAttemptsExceeded, NoModelAvailable
from schemas.openai import ChatRequest
from schemas.settings import TierConfig
from workers.chain import CallContext, Middleware, Route

FATAL_FOR_MODEL = frozenset({"provider_authentication_failed", "context_length_exceeded"})


def model_order(tier: TierConfig, requested: str | None) -> list[str]:
    """The tier's chain with the requested alias, if any, moved to the front."""
    if requested and requested in tier.models:
        return [requested, *(alias for alias in tier.models if alias != requested)]
    return list(tier.models)


def candidate_models(tier: TierConfig, requested: str | None, history: list[dict[str, object]]) -> list[str]:
    """The models of the chain still worth a try, in order, given earlier attempts."""
    # A provider batch's failure is the lane's, not the model's: the job then runs live on the
    # same chain (docs/provider-batches.md).
    history = [entry for entry in history if not entry.get("lane")]
    failures = Counter(str(entry["model"]) for entry in history if entry.get("outcome") != "ok")
    fatal = {str(entry["model"]) for entry in history if entry.get("outcome") in FATAL_FOR_MODEL}
    return [
        alias
        for alias in model_order(tier, requested)
        if alias not in fatal and failures[alias] < tier.attempts_per_model
    ]


def next_model(tier: TierConfig, requested: str | None, history: list[dict[str, object]]) -> str | None:
    """The first model of the chain still worth a try, given earlier attempts."""
    candidates = candidate_models(tier, requested, history)
    return candidates[0] if candidates else None


class Routing(Middleware):
    """Sets ``ctx.route``; raises ``max_attempts`` when every model is used up."""

    def before_call(self, ctx: CallContext) -> None:
        tier = ctx.settings.tiers.get(ctx.job.tier)
        if tier is None:  # the tier left the config after the job was accepted
            raise NoModelAvailable(f"Tier {ctx.job.tier!r} is no longer configured.")
        if ctx.settings.tier_kind(ctx.job.tier) != ctx.job.kind:  # the tier changed kind since
            raise NoModelAvailable(f"Tier {ctx.job.tier!r} no longer serves {ctx.job.kind} jobs.")
        alias = next_model(tier, ctx.request.model, ctx.job.attempt_log or [])
        if alias is None:
            last = (ctx.job.attempt_log or [{}])[-1]
            raise MaxAttemptsExceeded(
                f"Every model of tier {ctx.job.tier!r} failed; last error: {last.get('outcome', 'unknown')}.",
                models=tier.models,
            )
        ctx.route = Route(alias=alias, model=ctx.settings.models[alias])
        if isinstance(ctx.request, ChatRequest):
            ctx.request = ctx.request.with_default_max_tokens(tier.default_max_tokens)
