"""Usage and cost: price every provider call from the configured price table."""

from __future__ import annotations

from schemas.openai import CompletionUsage, EmbeddingUsage
from schemas.settings import ModelConfig
from workers.chain import CallContext, Middleware


def call_cost_usd(model: ModelConfig, usage: CompletionUsage | EmbeddingUsage) -> float:
    """The price of one call: tokens times the per-million-token prices."""
    return (
        usage.prompt_tokens * model.input_usd_per_mtok + usage.completion_tokens * model.output_usd_per_mtok
    ) / 1_000_000


class UsageRecording(Middleware):
    """Prices the call and fills ``ctx.attempt_record`` for the job row and usage table."""

    def after_call(self, ctx: CallContext) -> None:
        if ctx.route is None or ctx.response is None:
            return
        usage = ctx.response.completion.usage
        ctx.cost_usd = call_cost_usd(ctx.route.model, usage)
        self._record(ctx, "ok", usage.prompt_tokens, usage.completion_tokens)

    def on_error(self, ctx: CallContext) -> None:
        if not ctx.called or ctx.error is None:
            return
        self._record(ctx, ctx.error.code, 0, 0)

    @staticmethod
    def _record(ctx: CallContext, outcome: str, prompt_tokens: int, completion_tokens: int) -> None:
        assert ctx.route is not None
        ctx.attempt_record = {
            "attempt": ctx.attempt,
            "model": ctx.route.alias,
            "provider": ctx.route.provider,
            "outcome": outcome,
            "latency_ms": ctx.latency_ms,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "cost_usd": round(ctx.cost_usd, 8),
        }
        if ctx.response is not None and ctx.response.batch_size > 1:
            ctx.attempt_record["batch_size"] = ctx.response.batch_size  # worker-side batching
