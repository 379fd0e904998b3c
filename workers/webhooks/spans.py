"""A ``webhook.delivery`` span around each delivery attempt, in the job's trace (workers/tracing.py).

The attempt's parent is the trace context the job's submission left in Redis, so a job's
webhooks sit in its trace beside its attempts; the receiver gets the span's ``traceparent``
header. While tracing is off the send runs as it is, with no Redis read.
"""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry.trace import SpanKind
from redis import Redis

from schemas.errors import SwitchyardError
from schemas.tables import WebhookDelivery
from workers import tracing
from workers.keys import RedisKeys
from workers.webhooks.deliveries import AttemptResult

Sent = tuple[AttemptResult, float | None]


def send_in_span(
    send: Callable[[], Sent], redis: Redis, keys: RedisKeys, delivery: WebhookDelivery, attempt: int
) -> Sent:
    """``send()`` inside the attempt's span (current, so its headers carry the span)."""
    if not tracing.enabled():
        return send()
    attrs = tracing.attributes(
        delivery_id=delivery.id,
        event_type=delivery.event_type,
        job_id=delivery.job_id,
        tenant_id=delivery.tenant_id,
        attempt=attempt,
    )
    parent = tracing.recall(redis, keys, delivery.job_id)
    span = tracing.start_span("webhook.delivery", parent, attrs, kind=SpanKind.CLIENT)
    try:
        with tracing.current(span):
            result, retry_after = send()
    except SwitchyardError as exc:  # the SSRF guard refused the address
        tracing.end_span(span, exc.code)
        raise
    except BaseException:
        tracing.end_span(span, "refused")
        raise
    code = result.status_code
    if span is not None and code is not None:
        span.set_attribute("http.response.status_code", code)
    ok = code is not None and 200 <= code < 300
    tracing.end_span(span, "ok" if ok else f"http_{code}" if code is not None else "unreachable")
    return result, retry_after
