"""The ``job.submit`` span of ``POST /v1/jobs``: where a job's trace starts (workers/tracing.py).

It continues the caller's trace when the request has a W3C ``traceparent``, and it is current
while the job is published, so the dispatcher carries it to the worker in the message and
under the job's id (workers/dispatch.py): every later span of the job is its descendant.
"""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry.trace import SpanKind

from api.keys import Principal
from api.services import Services
from api.submission import Accepted
from schemas.errors import SwitchyardError
from schemas.jobs import JobCreate
from workers import tracing

Submit = Callable[[Services, Principal, JobCreate, str | None, str | None], Accepted]


def traced(submit: Submit, traceparent: str | None, tracestate: str | None) -> Submit:
    """``submit`` inside a ``job.submit`` span; ``submit`` itself while tracing is off."""
    if not tracing.enabled():
        return submit

    def spanned(
        services: Services, principal: Principal, body: JobCreate, key_header: str | None, job_id: str | None
    ) -> Accepted:
        attrs = tracing.attributes(
            job_id=job_id, tenant_id=principal.tenant_id, tier=body.tier, priority=body.priority
        )
        parent = tracing.extract(traceparent, tracestate)
        span = tracing.start_span("job.submit", parent, attrs, kind=SpanKind.SERVER)
        try:
            with tracing.current(span):
                accepted = submit(services, principal, body, key_header, job_id)
        except SwitchyardError as exc:
            tracing.end_span(span, exc.code)
            raise
        except BaseException:
            tracing.end_span(span, "crashed")
            raise
        if span is not None:
            answer = "replayed" if accepted.replayed else "cached" if accepted.cached else "queued"
            span.set_attributes(
                tracing.attributes(job_id=accepted.job.id, tier=accepted.job.tier, answer=answer)
            )
        tracing.end_span(span, "ok")
        return accepted

    return spanned
