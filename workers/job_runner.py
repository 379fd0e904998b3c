"""Runs one attempt of a job: claim the row, run the policy chain around the call, settle.

Every policy (the attempts cap, the provider Batch API lane, the tenant's running slot, rate
limits, caching, streaming, the soft time limit...) is middleware of the chain
(workers/middleware/); this module only makes the call and writes what the chain decided.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import structlog

from schemas.jobs import parse_request
from schemas.openai import EmbeddingRequest
from schemas.tables import Job, utcnow
from workers import chain_spans, job_spans, store, tracing
from workers.chain import CallContext
from workers.providers.base import AnyResponse, StreamingProvider
from workers.services import JobServices

log = structlog.get_logger("switchyard.job")


def run_job(rt: JobServices, job_id: str, traceparent: str | None = None) -> None:
    """Claim the job and run one attempt; a job someone else holds is left alone.

    ``traceparent``: the job's trace context from its message, when tracing is on.
    """
    job = store.claim_job(rt.engine, job_id, rt.settings.lease_s)
    if job is None:
        log.debug("job_not_claimable", job=job_id)
        return
    ctx = CallContext(job=job, settings=rt.settings, request=parse_request(job.kind, job.request))
    call, end = (lambda c: _call_provider(rt, c)), (lambda c: settle(rt, c))
    if not tracing.enabled():
        rt.chain.run(ctx, call, end)
        return
    with job_spans.attempt(rt.dispatcher.redis, rt.dispatcher.keys, ctx, traceparent):
        chain_spans.run(rt.chain, ctx, call, end)


def _call_provider(rt: JobServices, ctx: CallContext) -> AnyResponse:
    assert ctx.route is not None
    provider = rt.providers.get(ctx.route.provider)
    timeout_s = min(rt.settings.provider_timeout_s, rt.settings.providers[ctx.route.provider].timeout_s)
    if isinstance(ctx.request, EmbeddingRequest):
        return provider.embed(ctx.request, ctx.route.model, timeout_s)
    if ctx.on_text is not None and isinstance(provider, StreamingProvider):
        return provider.stream_complete(ctx.request, ctx.route.model, timeout_s, ctx.on_text)
    return provider.complete(ctx.request, ctx.route.model, timeout_s)


def settle(rt: JobServices, ctx: CallContext) -> None:
    """Write the attempt's outcome: succeeded, handed back for a retry, or failed.

    A final state is announced in one round trip with the attempt's riders (``ctx.take_riders``).
    """
    job = ctx.job
    attempt_log = [*(job.attempt_log or []), ctx.attempt_record] if ctx.attempt_record else job.attempt_log
    common: dict[str, Any] = {"attempt_log": attempt_log, "cost_usd": job.cost_usd + ctx.cost_usd}
    if ctx.answered is not None:  # answered with no call (a semantic hit): not an attempt
        _end(rt, ctx, store.finish_job(rt.engine, job, None, **ctx.answered, attempts=job.attempts - 1))
    elif ctx.error is None and ctx.response is not None:
        _end(rt, ctx, store.finish_job(rt.engine, job, ctx.usage_row, **_success_fields(ctx), **common))
    elif ctx.error is not None and not ctx.error.counts_as_attempt:
        common["attempts"] = job.attempts - 1  # handed back before any call: not an attempt
        _retry_later(rt, ctx, common)
    elif ctx.error is not None and ctx.retry_in is not None:
        _retry_later(rt, ctx, common)
    elif ctx.error is not None:
        code, message = ctx.error.code, ctx.error.message
        _end(rt, ctx, store.fail_job(rt.engine, job, code, message, usage=ctx.usage_row, **common))


def _success_fields(ctx: CallContext) -> dict[str, object]:
    assert ctx.response is not None and ctx.route is not None
    completion = ctx.response.completion
    return {
        "status": "succeeded",
        "result": completion.model_dump(mode="json"),
        "model": ctx.route.alias,
        "provider": ctx.route.provider,
        "prompt_tokens": completion.usage.prompt_tokens,
        "completion_tokens": completion.usage.completion_tokens,
        "latency_ms": ctx.latency_ms,
        "error_code": None,
        "error_message": None,
        "finished_at": utcnow(),
    }


def _retry_later(rt: JobServices, ctx: CallContext, common: dict[str, Any]) -> None:
    # Short waits go to the dispatcher's deferred set, published when due; long ones wait on
    # the row (not_before) for the reconciler. The row is the truth either way.
    assert ctx.retry_in is not None
    job = ctx.job
    not_before = utcnow() + timedelta(seconds=ctx.retry_in)
    if not store.hand_back(rt.engine, job, not_before, published=False, usage=ctx.usage_row, **common):
        return
    if ctx.retry_in <= rt.settings.max_short_wait_s:
        # Commit, defer, mark: a crash in between leaves an orphan the reconciler publishes.
        rt.dispatcher.defer(job.id, job.tier, job.priority, job.tenant_id, ctx.retry_in)
        store.mark_published(rt.engine, [job.id])


def _end(rt: JobServices, ctx: CallContext, final: Job | None) -> None:
    if final is not None:
        rt.outcomes.announce_job(final, ctx.take_riders(ending=True))
