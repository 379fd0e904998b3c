"""Runs one attempt of a job: claim, the policy chain around the call, then settle the row."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

import structlog
from celery.exceptions import SoftTimeLimitExceeded
from redis.client import Pipeline

from schemas.errors import MaxAttemptsExceeded, ProviderTimeout, TenantBusy
from schemas.jobs import parse_request
from schemas.openai import EmbeddingRequest
from schemas.tables import Job, Usage, utcnow
from workers import store
from workers.chain import CallContext
from workers.provider_batches.grouping import park_if_eligible
from workers.providers.base import AnyResponse, StreamingProvider
from workers.ratelimit.limiter import Grant, Limiter
from workers.ratelimit.policy import tenant_running_bucket
from workers.runtime import Runtime
from workers.token_stream import TokenPublisher

log = structlog.get_logger("switchyard.job")


def run_job(rt: Runtime, job_id: str) -> None:
    """Claim the job and run one attempt; a job someone else holds is left alone."""
    job = store.claim_job(rt.engine, job_id, rt.settings.lease_s)
    if job is None:
        log.debug("job_not_claimable", job=job_id)
        return
    # The job left its queue: the tenant's backlog counter goes down (workers/dispatch.py).
    left_queue = partial(rt.dispatcher.taken, job.tier, job.tenant_id)
    if job.attempts > rt.settings.max_attempts:
        left_queue()
        error = MaxAttemptsExceeded(f"The job used all {rt.settings.max_attempts} attempts.")
        _end(rt, store.fail_job(rt.engine, job, error.code, error.message))
        return
    if park_if_eligible(rt, job):  # a batch-priority 24h job waits for its provider's Batch API
        left_queue()
        return
    ctx = CallContext(job=job, settings=rt.settings, request=parse_request(job.kind, job.request))
    slot = _tenant_slot(rt, job, left_queue)  # one round trip for both
    if slot is None:
        # The tenant has its maximum of jobs running: other tenants go first, this job soon.
        wait = rt.settings.rate_limits.tenant_retry_s
        ctx.error = TenantBusy("The tenant is at its running-jobs limit.", retry_after=wait)
        ctx.retry_in = wait * (1 + random.uniform(0, 0.5))
        settle(rt, ctx)
        return
    release = SlotRelease(rt.limiter, slot)
    settled = False
    try:
        rt.chain.run(ctx, lambda c: _call_provider(rt, c))
        settle(rt, ctx, release.queue)
        settled = True
    finally:
        release.after(settled)


@dataclass
class SlotRelease:
    """The tenant's running-jobs slot: given back in the round trip that announces the job's
    end, or on its own when the attempt ends without an announcement (a retry, an error).

    When settling fails, the release is sent on its own even if it was queued: the round trip
    that carried it may not have run, and freeing a slot twice is harmless (one ``ZREM``).
    """

    limiter: Limiter
    grant: Grant
    queued: bool = False  # the release rides on the announcement's round trip

    def queue(self, pipe: Pipeline) -> None:
        """Put the release on ``pipe``, the announcement's round trip."""
        self.limiter.settle(self.grant, None, pipe)
        self.queued = True

    def after(self, settled: bool) -> None:
        """Give the slot back unless the attempt settled with the release on its round trip."""
        if not (settled and self.queued):
            self.limiter.settle(self.grant, None)


def _tenant_slot(rt: Runtime, job: Job, along: Callable[[Pipeline], object]) -> Grant | None:
    limits = rt.tenant_limits.running(job.tenant_id)
    return rt.limiter.acquire(tenant_running_bucket(job.tenant_id), limits, 0, along=along).grant


def _call_provider(rt: Runtime, ctx: CallContext) -> AnyResponse:
    assert ctx.route is not None
    provider = rt.providers.get(ctx.route.provider)
    timeout_s = min(rt.settings.provider_timeout_s, rt.settings.providers[ctx.route.provider].timeout_s)
    try:
        if isinstance(ctx.request, EmbeddingRequest):
            return provider.embed(ctx.request, ctx.route.model, timeout_s)
        if ctx.request.stream and isinstance(provider, StreamingProvider):
            # A streaming job's deltas go to Redis as they come (GET /v1/jobs/{id}/stream).
            sink = TokenPublisher.for_job(rt.redis, rt.keys, rt.settings.streaming, ctx.job.id, ctx.attempt)
            return provider.stream_complete(ctx.request, ctx.route.model, timeout_s, sink)
        return provider.complete(ctx.request, ctx.route.model, timeout_s)
    except SoftTimeLimitExceeded as exc:
        # Turn Celery's soft limit into a typed, retryable timeout so the job is handed back
        # now instead of waiting for its lease to expire.
        raise ProviderTimeout("The call outran the task's soft time limit.") from exc


def settle(rt: Runtime, ctx: CallContext, along: Callable[[Pipeline], object] | None = None) -> None:
    """Write the attempt's outcome: succeeded, handed back for a retry, or failed.

    ``along`` queues commands of the caller's on the round trip that announces a final state.
    """
    job = ctx.job
    attempt_log = [*(job.attempt_log or []), ctx.attempt_record] if ctx.attempt_record else job.attempt_log
    usage = _usage_row(job, ctx) if ctx.attempt_record else None
    common = {"attempt_log": attempt_log, "cost_usd": job.cost_usd + ctx.cost_usd}
    if ctx.cached is not None:  # a semantic hit: answered without a call, so not an attempt
        fields = ctx.cached.as_job_fields(job.cache or {})
        _end(rt, store.finish_job(rt.engine, job, None, **fields, attempts=job.attempts - 1), along)
    elif ctx.error is None and ctx.response is not None:
        _end(rt, store.finish_job(rt.engine, job, usage, **_success_fields(ctx), **common), along)
    elif ctx.error is not None and not ctx.error.counts_as_attempt:
        common["attempts"] = job.attempts - 1  # handed back before any call: not an attempt
        _retry_later(rt, ctx, usage, common)
    elif ctx.error is not None and ctx.retry_in is not None:
        _retry_later(rt, ctx, usage, common)
    elif ctx.error is not None:
        failed = store.fail_job(rt.engine, job, ctx.error.code, ctx.error.message, usage=usage, **common)
        _end(rt, failed, along)


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


def _retry_later(rt: Runtime, ctx: CallContext, usage: Usage | None, common: dict[str, object]) -> None:
    # Short waits go to the dispatcher's deferred set, published when due; long ones wait on
    # the row (not_before) for the reconciler. The row is the truth either way.
    assert ctx.retry_in is not None
    job = ctx.job
    not_before = utcnow() + timedelta(seconds=ctx.retry_in)
    if not store.hand_back(rt.engine, job, not_before, published=False, usage=usage, **common):
        return
    if ctx.retry_in <= rt.settings.max_short_wait_s:
        # Commit, defer, mark: a crash in between leaves an orphan the reconciler publishes.
        rt.dispatcher.defer(job.id, job.tier, job.priority, job.tenant_id, ctx.retry_in)
        store.mark_published(rt.engine, [job.id])


def _usage_row(job: Job, ctx: CallContext) -> Usage:
    record = ctx.attempt_record
    # model_construct: every field is converted here already; validating again costs 70 us.
    return Usage.model_construct(
        job_id=job.id,
        tenant_id=job.tenant_id,
        tier=job.tier,
        model=str(record["model"]),
        provider=str(record["provider"]),
        attempt=job.attempts,
        prompt_tokens=int(record["prompt_tokens"]),
        completion_tokens=int(record["completion_tokens"]),
        cost_usd=float(record["cost_usd"]),
        latency_ms=float(record["latency_ms"]),
        outcome=str(record["outcome"]),
        created_at=utcnow(),
    )


def _end(rt: Runtime, final: Job | None, along: Callable[[Pipeline], object] | None = None) -> None:
    if final is not None:
        rt.outcomes.announce_job(final, along)
