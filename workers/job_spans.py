"""A job's spans in a worker: the wait on its queue, then the attempt (workers/tracing.py).

Both continue the job's trace. Its context comes in the Celery message's ``traceparent``
header; a message without one (republished by the reconciler, a deferred retry released by
the dispatcher) finds the copy the dispatcher left in Redis under the job's id
(workers/dispatch.py), as do the webhook deliveries. A job with neither starts a trace of its
own. While tracing is off, :func:`attempt` costs one check and no Redis read.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from opentelemetry.trace import SpanKind
from redis import Redis

from schemas.tables import Job
from workers import tracing
from workers.chain import CallContext
from workers.keys import RedisKeys


def job_attributes(job: Job) -> dict[str, object]:
    """What every span of a job carries (never the request's text)."""
    return tracing.attributes(
        job_id=job.id, tenant_id=job.tenant_id, tier=job.tier, priority=job.priority, attempt=job.attempts
    )


@contextmanager
def attempt(redis: Redis, keys: RedisKeys, ctx: CallContext, traceparent: str | None) -> Iterator[None]:
    """The attempt's span around the block (current inside it, so the chain's spans nest under
    it), after a span of the wait on the queue that ended with this claim."""
    if not tracing.enabled():
        yield
        return
    job = ctx.job
    parent = tracing.extract(traceparent) or tracing.recall(redis, keys, job.id)
    shared = job_attributes(job)
    claimed_ns = _ns(job.started_at) if job.started_at is not None else None
    waited_from = job.not_before or job.created_at
    if claimed_ns is not None and waited_from is not None:
        start_ns = min(_ns(waited_from), claimed_ns)
        wait = tracing.start_span("job.queue_wait", parent, shared, start_time_ns=start_ns)
        tracing.end_span(wait, end_time_ns=claimed_ns)
    span = tracing.start_span("job.attempt", parent, shared, kind=SpanKind.CONSUMER)
    try:
        with tracing.current(span):
            yield
    except BaseException as exc:
        if span is not None:
            span.record_exception(exc)
        tracing.end_span(span, "crashed")
        raise
    if span is not None and ctx.route is not None:
        span.set_attributes(tracing.attributes(model=ctx.route.alias, provider=ctx.route.provider))
    tracing.end_span(span, outcome(ctx))


def outcome(ctx: CallContext) -> str:
    """``ok``, the error's code, or ``skipped`` (the job went elsewhere: no call, no answer)."""
    if ctx.error is not None:
        return ctx.error.code
    return "ok" if ctx.response is not None or ctx.answered is not None else "skipped"


def _ns(moment: datetime) -> int:
    if moment.tzinfo is None:  # SQLite hands back naive UTC
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000_000)
