"""Usage and cost: price every provider call, and write its attempt entry and usage row.

A call on the provider Batch API lane (``route.provider_batch``) is priced at the model's
batch prices and its entry is marked ``lane: provider_batch``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.openai import CompletionUsage, EmbeddingUsage
from schemas.settings import ModelConfig
from schemas.tables import Usage, utcnow
from workers.chain import PROVIDER_BATCH_LANE, CallContext, Middleware, Route


def call_cost_usd(
    model: ModelConfig, usage: CompletionUsage | EmbeddingUsage, batch_api: bool = False
) -> float:
    """The price of one call: tokens times the per-million-token prices (the Batch API's ones
    with ``batch_api``)."""
    input_price, output_price = (
        model.batch_prices() if batch_api else (model.input_usd_per_mtok, model.output_usd_per_mtok)
    )
    return (usage.prompt_tokens * input_price + usage.completion_tokens * output_price) / 1_000_000


# The attempt-log entry's fields that the usage table keeps too.
USAGE_FIELDS = (
    "attempt",
    "model",
    "provider",
    "outcome",
    "latency_ms",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
)


def usage_row(job_id: str, tenant_id: str, tier: str, entry: Mapping[str, Any]) -> Usage:
    """The usage table's row for one attempt-log entry of the job."""
    # model_construct: every field is converted here already; validating again costs 70 us.
    return Usage.model_construct(
        job_id=job_id,
        tenant_id=tenant_id,
        tier=tier,
        created_at=utcnow(),
        **{name: entry[name] for name in USAGE_FIELDS},
    )


def route_cost_usd(route: Route, usage: CompletionUsage | EmbeddingUsage) -> float:
    """The price of one call on ``route``, at its lane's prices."""
    return call_cost_usd(route.model, usage, batch_api=route.provider_batch is not None)


class UsageRecording(Middleware):
    """Prices the call; fills ``ctx.attempt_record`` and ``ctx.usage_row`` for the job and usage tables."""

    def after_call(self, ctx: CallContext) -> None:
        if ctx.route is None or ctx.response is None:
            return
        usage = ctx.response.completion.usage
        ctx.cost_usd = route_cost_usd(ctx.route, usage)
        self._record(ctx, "ok", usage.prompt_tokens, usage.completion_tokens)

    def on_error(self, ctx: CallContext) -> None:
        if not ctx.called or ctx.error is None:
            return
        self._record(ctx, ctx.error.code, 0, 0)

    @staticmethod
    def _record(ctx: CallContext, outcome: str, prompt_tokens: int, completion_tokens: int) -> None:
        route = ctx.route
        assert route is not None
        cost_usd = round(ctx.cost_usd, 8)
        ctx.attempt_record = {
            "attempt": ctx.attempt,
            "model": route.alias,
            "provider": route.provider,
            "outcome": outcome,
            "latency_ms": ctx.latency_ms,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "cost_usd": cost_usd,
        }
        if route.provider_batch is not None:
            ctx.attempt_record.update(lane=PROVIDER_BATCH_LANE, provider_batch=route.provider_batch)
        if ctx.response is not None and ctx.response.batch_size > 1:
            ctx.attempt_record["batch_size"] = ctx.response.batch_size  # worker-side batching
        ctx.usage_row = usage_row(ctx.job.id, ctx.job.tenant_id, ctx.job.tier, ctx.attempt_record)
