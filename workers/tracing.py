"""OpenTelemetry traces: the tracer of this process, W3C ``traceparent`` in and out, span helpers.

Off by default. The standard variables turn it on at process start (:func:`start`, called by
the API's app factory and by each worker process): ``OTEL_TRACES_EXPORTER=otlp`` (or
``console``), or an ``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``
alone; ``OTEL_SDK_DISABLED=true`` wins over both. The exporter reads its own ``OTEL_EXPORTER_
OTLP_*`` settings (endpoint, headers, timeout) and the sampler ``OTEL_TRACES_SAMPLER``; the
service name is ``OTEL_SERVICE_NAME`` or ``switchyard-api`` / ``switchyard-worker``. These are
the SDK's own variables, read here and by the SDK, not Settings: every OpenTelemetry
deployment already sets them.

While off, every helper returns at its first line (``_tracer is None``): no span objects, no
context switches, nothing on the wire. Spans go out from a background thread
(``BatchSpanProcessor``), so an exporter that cannot reach its endpoint drops spans after its
bounded retries and never stalls a request or a job. Prompt text never goes on a span.

The process keeps its own provider rather than OpenTelemetry's global one, so tests can swap
in the SDK's in-memory exporter (:func:`install`) and take it out again (:func:`stop`).
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from redis import Redis

from workers.keys import RedisKeys

ATTRIBUTE_PREFIX = "switchyard."
EXPORTERS = ("otlp", "console", "none")
# How long a job's trace context waits in Redis for its attempts and webhooks (workers/job_spans.py):
# later ones (a retry after hours, a webhook's last retries) start a trace of their own.
CONTEXT_TTL_S = 86_400
_propagator = TraceContextTextMapPropagator()
_tracer: trace.Tracer | None = None
_provider: TracerProvider | None = None
_exporters: list[SpanExporter] = []
_at_exit: list[object] = []  # the exit hook, once registered


def enabled() -> bool:
    """Whether this process records spans."""
    return _tracer is not None


def exporters_from_env(environ: Mapping[str, str]) -> list[SpanExporter]:
    """The exporters the ``OTEL_*`` variables ask for; none when tracing stays off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    names = [n.strip().lower() for n in environ.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip()]
    if not names and (
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    ):
        names = ["otlp"]
    unknown = [name for name in names if name not in EXPORTERS]
    if unknown:
        raise ValueError(f"OTEL_TRACES_EXPORTER={','.join(unknown)} is not one of {', '.join(EXPORTERS)}")
    found: list[SpanExporter] = []
    for name in names:
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            found.append(OTLPSpanExporter())
        elif name == "console":
            found.append(ConsoleSpanExporter())
    return found


def start(service: str, environ: Mapping[str, str] | None = None) -> bool:
    """Turn tracing on from ``OTEL_*`` unless it is on already; whether it is on.

    ``service`` is the default service name (``OTEL_SERVICE_NAME`` wins).
    """
    if _tracer is not None:
        return True
    env = os.environ if environ is None else environ
    exporters = exporters_from_env(env)
    if exporters:
        install(exporters, env.get("OTEL_SERVICE_NAME") or service)
    return _tracer is not None


def install(exporters: list[SpanExporter], service: str, batched: bool = True) -> None:
    """Record spans into ``exporters`` from now on (``batched=False``: synchronously, for tests)."""
    global _tracer, _provider, _exporters
    stop()
    # Not the SDK's own exit hook: its flush may wait out the exporter's retries (10 s).
    provider = TracerProvider(resource=Resource.create({"service.name": service}), shutdown_on_exit=False)
    for exporter in exporters:
        processor = BatchSpanProcessor(exporter) if batched else SimpleSpanProcessor(exporter)
        provider.add_span_processor(processor)
    _provider, _tracer, _exporters = provider, provider.get_tracer("switchyard"), list(exporters)
    if not _at_exit:
        _at_exit.append(atexit.register(stop))


def stop(flush_timeout_s: float = 2.0) -> None:
    """Send what is recorded (for ``flush_timeout_s`` at most) and turn tracing off: a process's
    exit, a test's end. An exporter that cannot reach its endpoint is cut off, not waited for."""
    global _tracer, _provider, _exporters
    provider, exporters = _provider, _exporters
    _provider, _tracer, _exporters = None, None, []
    if provider is None:
        return
    # The SDK's flush ignores its timeout and waits out each batch's retries (10 s a batch), so
    # it runs in a thread of its own; past the timeout the exporters are shut, which ends their
    # retries, and what is left is dropped.
    flushing = threading.Thread(target=provider.shutdown, name="otel-shutdown", daemon=True)
    flushing.start()
    flushing.join(flush_timeout_s)
    if flushing.is_alive():
        for exporter in exporters:
            exporter.shutdown()
        flushing.join(flush_timeout_s)


def sampled_out() -> bool:
    """The current span was sampled out (``OTEL_TRACES_SAMPLER``, or a caller's ``traceparent``
    flagged not sampled): its children would not be recorded either, so need not be made."""
    context = trace.get_current_span().get_span_context()
    return context.is_valid and not context.trace_flags.sampled


def attributes(**values: Any) -> dict[str, Any]:
    """``switchyard.<name>`` attributes, leaving out those that are None."""
    return {ATTRIBUTE_PREFIX + name: value for name, value in values.items() if value is not None}


def start_span(
    name: str,
    parent: Span | otel_context.Context | None = None,
    attrs: Mapping[str, Any] | None = None,
    start_time_ns: int | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
) -> Span | None:
    """A started span, child of ``parent`` (a span or a context; the current one when None);
    None while tracing is off. End it with :func:`end_span`."""
    if _tracer is None:
        return None
    context = trace.set_span_in_context(parent) if isinstance(parent, Span) else parent
    return _tracer.start_span(name, context=context, kind=kind, attributes=attrs, start_time=start_time_ns)


def end_span(span: Span | None, outcome: str | None = None, end_time_ns: int | None = None) -> None:
    """End ``span`` with its outcome: ``ok`` or an error code (an error status)."""
    if span is None:
        return
    if outcome is not None:
        span.set_attribute(ATTRIBUTE_PREFIX + "outcome", outcome)
        if outcome != "ok":
            span.set_status(Status(StatusCode.ERROR, outcome))
    span.end(end_time=end_time_ns)


@contextmanager
def current(span: Span | None) -> Iterator[None]:
    """Make ``span`` the current one inside the block, so :func:`outgoing_headers` carries it."""
    if span is None:
        yield
        return
    token = otel_context.attach(trace.set_span_in_context(span))
    try:
        yield
    finally:
        otel_context.detach(token)


def extract(traceparent: str | bytes | None, tracestate: str | None = None) -> otel_context.Context | None:
    """The remote parent a W3C ``traceparent`` names; None when absent or malformed."""
    if not traceparent:
        return None
    carrier = {"traceparent": traceparent.decode() if isinstance(traceparent, bytes) else traceparent}
    if tracestate:
        carrier["tracestate"] = tracestate
    context = _propagator.extract(carrier)
    return context if trace.get_current_span(context).get_span_context().is_valid else None


def recall(redis: Redis, keys: RedisKeys, job_id: str | None) -> otel_context.Context | None:
    """The trace context a job's submission left in Redis (workers/dispatch.py); None when it
    is gone, or while tracing is off (no read then)."""
    if job_id is None or _tracer is None:
        return None
    return extract(redis.get(keys.trace_context(job_id)))


def traceparent_of(span: Span | None) -> str | None:
    """``span``'s W3C ``traceparent`` value, to carry to another process; None while off."""
    if span is None:
        return None
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get("traceparent")


def current_traceparent() -> str | None:
    """The current span's ``traceparent``; None while tracing is off or no span is current."""
    headers = outgoing_headers()
    return headers.get("traceparent") if headers else None


def outgoing_headers() -> dict[str, str] | None:
    """``traceparent`` (and ``tracestate``) of the current span for an outgoing HTTP request;
    None while tracing is off or no span is current."""
    if _tracer is None:
        return None
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier or None
