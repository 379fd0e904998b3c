"""The call log: one structured line per provider call, with no secrets or message text.

A provider batch's line is a call too (``PolicyChain.record``); its line says its lane and batch.
"""

from __future__ import annotations

import structlog

from workers.chain import CallContext, Middleware

log = structlog.get_logger("switchyard.provider_call")


class CallLog(Middleware):
    """Writes the design's fields for every attempt, success or failure."""

    def after_call(self, ctx: CallContext) -> None:
        self._write(ctx, "ok")

    def on_error(self, ctx: CallContext) -> None:
        self._write(ctx, ctx.error.code if ctx.error else "error")

    @staticmethod
    def _write(ctx: CallContext, outcome: str) -> None:
        if not ctx.called or ctx.route is None:
            return
        usage = ctx.response.completion.usage if ctx.response is not None else None
        route = ctx.route
        lane = {"lane": route.lane, "provider_batch": route.provider_batch} if route.lane else {}
        log.info(
            "provider_call",
            job=ctx.job.id,
            tenant=ctx.job.tenant_id,
            tier=ctx.job.tier,
            model=route.alias,
            provider=route.provider,
            latency_ms=ctx.latency_ms,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            cost_usd=round(ctx.cost_usd, 8),
            cache=(ctx.job.cache or {}).get("hit"),
            attempt=ctx.attempt,
            outcome=outcome,
            retry_in_s=round(ctx.retry_in, 3) if ctx.retry_in is not None else None,
            **lane,
        )
