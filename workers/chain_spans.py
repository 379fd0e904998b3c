"""The policy chain with a span around each middleware, the provider call and the settle.

One generic wrap, not a line in each middleware: :func:`traced` gives a chain's twin whose
middleware are the same objects, each inside :class:`SpanAround`. A middleware's span opens
when its ``before_call`` starts and closes when it is unwound (``after_call`` or
``on_error``), so the spans nest like the onion: each middleware's span holds those after it
and the provider call, and its own time is what its hooks took. A middleware that ends the
attempt early (``SkipAttempt``, an error) closes its span there; spans a skip left open close
in ``after_attempt``. The caller's settle has a ``job.settle`` span.

The job runner goes through :func:`run`, which runs the twin only while tracing is on and the
attempt is sampled: otherwise the plain chain runs untouched, with no extra frame. The spans
cost about 20 to 40 us each here (docs/observability.md), so sampling is the knob for a busy
deployment.
"""

from __future__ import annotations

import weakref

from opentelemetry.trace import Span, SpanKind

from schemas.errors import SwitchyardError
from workers import tracing
from workers.chain import CallContext, Middleware, PolicyChain, ProviderCall, Settle, SkipAttempt
from workers.providers.base import AnyResponse

_twins: weakref.WeakKeyDictionary[PolicyChain, PolicyChain] = weakref.WeakKeyDictionary()


class OpenSpans:
    """An attempt's middleware spans still open, innermost last (``ctx.state(OpenSpans)``)."""

    def __init__(self) -> None:
        self.spans: dict[int, Span] = {}

    def innermost(self) -> Span | None:
        return next(reversed(self.spans.values()), None)

    def close(self, owner: object, outcome: str | None = None) -> None:
        tracing.end_span(self.spans.pop(id(owner), None), outcome)


class SpanAround(Middleware):
    """``inner``'s hooks inside a span named after its class."""

    def __init__(self, inner: Middleware) -> None:
        self.inner = inner
        self.name = f"middleware.{type(inner).__name__}"

    def before_call(self, ctx: CallContext) -> None:
        spans = ctx.state(OpenSpans)
        span = tracing.start_span(self.name, spans.innermost())
        if span is not None:
            spans.spans[id(self)] = span
        try:
            self.inner.before_call(ctx)
        except SkipAttempt:
            spans.close(self, "skipped")
            raise
        except SwitchyardError as exc:  # not entered: no after-hook will close it
            spans.close(self, exc.code)
            raise

    def wrap_call(self, ctx: CallContext, call: ProviderCall) -> ProviderCall:
        return self.inner.wrap_call(ctx, call)

    def after_call(self, ctx: CallContext) -> None:
        self.inner.after_call(ctx)  # if it raises, on_error closes the span
        ctx.state(OpenSpans).close(self, "ok")

    def on_error(self, ctx: CallContext) -> None:
        try:
            self.inner.on_error(ctx)
        finally:
            ctx.state(OpenSpans).close(self, ctx.error.code if ctx.error is not None else None)

    def after_attempt(self, ctx: CallContext, settled: bool) -> None:
        ctx.state(OpenSpans).close(self, "skipped")  # a span a skip left open
        self.inner.after_attempt(ctx, settled)


def run(chain: PolicyChain, ctx: CallContext, call: ProviderCall, settle: Settle) -> None:
    """One attempt through ``chain`` (``PolicyChain.run``), with spans while tracing is on."""
    if not tracing.enabled() or tracing.sampled_out():  # sampled out: no spans, the context still goes on
        chain.run(ctx, call, settle)
        return
    try:
        traced(chain).run(ctx, provider_call(call), settle_in_span(settle))
    finally:  # spans an unexpected exception left open
        spans = ctx.state(OpenSpans)
        for owner in list(spans.spans):
            tracing.end_span(spans.spans.pop(owner), "crashed")


def traced(chain: PolicyChain) -> PolicyChain:
    """``chain``'s twin with a span around each middleware, built once per chain."""
    twin = _twins.get(chain)
    if twin is None:
        twin = _twins[chain] = PolicyChain([SpanAround(m) for m in chain.middleware])
    return twin


def provider_call(call: ProviderCall) -> ProviderCall:
    """``call`` inside a ``provider.call`` span, current during the call, so the adapter sends
    its ``traceparent`` to the provider (workers/providers/openai_compat.py)."""

    def spanned(ctx: CallContext) -> AnyResponse:
        route = ctx.route
        attrs = tracing.attributes(
            model=route.alias if route else None,
            provider=route.provider if route else None,
            tier=ctx.job.tier,
            attempt=ctx.attempt,
        )
        parent = ctx.state(OpenSpans).innermost()
        span = tracing.start_span("provider.call", parent, attrs, kind=SpanKind.CLIENT)
        try:
            with tracing.current(span):
                response = call(ctx)
        except SwitchyardError as exc:
            tracing.end_span(span, exc.code)
            raise
        except BaseException:
            tracing.end_span(span, "crashed")
            raise
        tracing.end_span(span, "ok")
        return response

    return spanned


def settle_in_span(settle: Settle) -> Settle:
    """``settle`` inside a ``job.settle`` span (writing the outcome, announcing the end)."""

    def spanned(ctx: CallContext) -> None:
        span = tracing.start_span("job.settle")
        try:
            with tracing.current(span):
                settle(ctx)
        except BaseException:
            tracing.end_span(span, "crashed")
            raise
        tracing.end_span(span)

    return spanned
