"""What tracing costs a job attempt's policy chain, off and on, measured in one process.

The chain is shaped like the default one: 16 middleware (hooks that do nothing, so only the
chain's and the spans' own cost is measured) around a provider call that answers at once.
Three sides in alternating rounds: the plain ``PolicyChain.run`` (the baseline), the job
runner's path with tracing off (``chain_spans.run``: one check, then the plain chain), and
tracing on (a span per middleware, the provider call and the settle, into the SDK's
``BatchSpanProcessor`` with an exporter that drops what it gets, so no network is measured).
The last line holds the figures as ``name=value``.

Run: ``.venv/bin/python bench/tracing_overhead.py`` (``--attempts``, ``--rounds``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from typing import cast

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from schemas.openai import ChatCompletion, ChatRequest
from schemas.settings import Settings
from schemas.tables import Job, utcnow
from workers import chain_spans, tracing
from workers.chain import CallContext, Middleware, PolicyChain
from workers.providers.base import AnyResponse, ProviderResponse

MIDDLEWARE = 16
ANSWER = ProviderResponse(
    completion=ChatCompletion.model_validate(
        {
            "id": "c",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
    )
)


class Dropping(SpanExporter):
    """Takes every batch and keeps nothing."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _context() -> CallContext:
    now = utcnow()
    job = Job(
        id="job_bench", tenant_id="ten_bench", tier="small", request={}, attempt_log=[], job_metadata={}
    )
    job.created_at = job.updated_at = now
    request = ChatRequest.model_validate({"messages": [{"role": "user", "content": "Hi"}]})
    return CallContext(job=job, settings=cast(Settings, None), request=request)


def _call(ctx: CallContext) -> AnyResponse:
    return ANSWER


def _settle(ctx: CallContext) -> None:
    pass


def _per_attempt_us(run: Callable[[CallContext], None], attempts: int) -> float:
    contexts = [_context() for _ in range(attempts)]
    began = time.perf_counter()
    for ctx in contexts:
        run(ctx)
    return (time.perf_counter() - began) / attempts * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    chain = PolicyChain([type(f"Policy{n}", (Middleware,), {})() for n in range(MIDDLEWARE)])

    def plain(ctx: CallContext) -> None:
        chain.run(ctx, _call, _settle)

    def runner(ctx: CallContext) -> None:
        chain_spans.run(chain, ctx, _call, _settle)

    figures: dict[str, list[float]] = {"plain": [], "off": [], "on": []}
    for _ in range(args.rounds):
        figures["plain"].append(_per_attempt_us(plain, args.attempts))
        figures["off"].append(_per_attempt_us(runner, args.attempts))
        tracing.install([Dropping()], "switchyard-bench")
        figures["on"].append(_per_attempt_us(runner, args.attempts))
        tracing.stop()
    plain_us, off_us, on_us = (statistics.median(figures[side]) for side in ("plain", "off", "on"))
    print(f"{MIDDLEWARE} middleware, {args.attempts} attempts x {args.rounds} rounds (median of rounds)")
    print(f"  plain chain         {plain_us:8.2f} us/attempt")
    print(f"  tracing off         {off_us:8.2f} us/attempt  ({off_us - plain_us:+.2f})")
    print(f"  tracing on          {on_us:8.2f} us/attempt  ({on_us - plain_us:+.2f}, {MIDDLEWARE + 2} spans)")
    print(
        f"tracing_plain_us={plain_us:.2f} tracing_off_us={off_us:.2f} tracing_on_us={on_us:.2f} "
        f"tracing_off_ratio={off_us / plain_us:.3f} tracing_on_extra_us={on_us - plain_us:.1f}"
    )


if __name__ == "__main__":
    main()
