"""workers/tracing.py and the chain's spans (workers/chain_spans.py) with the SDK's in-memory
exporter: what the OTEL_* variables turn on, the spans around each middleware and the provider
call on every path through the chain, the traced message header, and an exporter whose
endpoint does not answer."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest
from chain_support import Recorder, completion, make_ctx, recording_call
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import ConsoleSpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from infra.launch import free_port
from schemas.errors import ProviderRateLimited, ProviderUnavailable
from schemas.settings import Settings
from workers import chain_spans, tracing
from workers.bulk_publish import MessageTemplate
from workers.celery_app import create_celery
from workers.chain import CallContext, Middleware, PolicyChain, SkipAttempt

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    tracing.install([memory], "switchyard-test", batched=False)
    yield memory
    tracing.stop()


def _recorders(journal: list[str], names: str, **misbehaviour: object) -> list[Middleware]:
    """One Recorder per name, each of a class of that name (a span is named by its class)."""
    built: list[Middleware] = []
    for name in names:
        kind = type(name.upper(), (Recorder,), {})
        built.append(kind(name, journal, **misbehaviour.get(name, {})))  # type: ignore[arg-type]
    return built


def _outcomes(spans: tuple[ReadableSpan, ...] | list[ReadableSpan]) -> dict[str, object]:
    return {span.name: (span.attributes or {}).get("switchyard.outcome") for span in spans}


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, []),
        ({"OTEL_TRACES_EXPORTER": "none"}, []),
        ({"OTEL_TRACES_EXPORTER": "console"}, [ConsoleSpanExporter]),
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}, []),
    ],
)
def test_the_otel_variables_choose_the_exporters_and_tracing_is_off_by_default(
    environ: dict[str, str], expected: list[type]
) -> None:
    assert [type(e) for e in tracing.exporters_from_env(environ)] == expected


def test_an_otlp_endpoint_alone_turns_the_otlp_exporter_on() -> None:
    [exporter] = tracing.exporters_from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert type(exporter).__name__ == "OTLPSpanExporter"
    exporter.shutdown()


def test_an_unknown_exporter_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="OTEL_TRACES_EXPORTER=zipkin"):
        tracing.exporters_from_env({"OTEL_TRACES_EXPORTER": "zipkin"})


def test_start_stays_off_without_otel_variables() -> None:
    assert tracing.start("switchyard-test", environ={}) is False
    assert tracing.enabled() is False and tracing.start_span("x") is None
    assert tracing.outgoing_headers() is None


def test_an_otlp_endpoint_that_does_not_answer_neither_stalls_spans_nor_the_exit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    environ = {"OTEL_TRACES_EXPORTER": "otlp"}
    assert tracing.start("switchyard-test", environ=environ) is True
    try:
        began = time.perf_counter()
        for _ in range(2000):
            tracing.end_span(tracing.start_span("job.attempt"), "ok")
        recording_s = time.perf_counter() - began
    finally:
        began = time.perf_counter()
        tracing.stop(flush_timeout_s=1.0)
        stopping_s = time.perf_counter() - began
    assert recording_s < 2.0, recording_s  # the export runs in the processor's thread
    assert stopping_s < 5.0, stopping_s  # its retries are cut off, not waited out (10 s)
    assert tracing.enabled() is False


def test_a_traceparent_is_read_and_written_back_in_w3c_form(exporter: InMemorySpanExporter) -> None:
    parent = tracing.extract(TRACEPARENT)
    span = tracing.start_span("child", parent)
    written = tracing.traceparent_of(span)
    tracing.end_span(span)
    assert written is not None and written.split("-")[1] == TRACEPARENT.split("-")[1]
    assert tracing.extract("00-zz-not-a-trace") is None and tracing.extract(None) is None


def test_each_middleware_has_a_span_and_they_nest_around_the_provider_call(
    settings: Settings, exporter: InMemorySpanExporter
) -> None:
    journal: list[str] = []
    chain = PolicyChain(_recorders(journal, "abc"))
    ctx = make_ctx(settings)

    chain_spans.run(chain, ctx, recording_call(journal), lambda c: None)

    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert journal[:7] == ["a.before", "b.before", "c.before", "call", "c.after", "b.after", "a.after"]
    assert set(spans) == {"middleware.A", "middleware.B", "middleware.C", "provider.call", "job.settle"}
    parents = {name: span.parent.span_id if span.parent else None for name, span in spans.items()}
    ids = {name: span.context.span_id for name, span in spans.items()}
    assert parents["middleware.B"] == ids["middleware.A"] and parents["middleware.C"] == ids["middleware.B"]
    assert parents["provider.call"] == ids["middleware.C"]
    assert all(
        outcome == "ok" for name, outcome in _outcomes(list(spans.values())).items() if name != "job.settle"
    )


def test_a_failed_call_marks_the_call_and_every_unwound_middleware_with_its_code(
    settings: Settings, exporter: InMemorySpanExporter
) -> None:
    journal: list[str] = []
    ctx = make_ctx(settings)
    failure = ProviderUnavailable("down")

    chain_spans.run(
        PolicyChain(_recorders(journal, "ab")), ctx, recording_call(journal, failure), lambda c: None
    )

    spans = exporter.get_finished_spans()
    assert _outcomes(spans) == {
        "provider.call": failure.code,
        "middleware.B": failure.code,
        "middleware.A": failure.code,
        "job.settle": None,
    }
    assert all(span.status.status_code is StatusCode.ERROR for span in spans if span.name != "job.settle")


def test_a_middleware_that_refuses_or_skips_closes_its_span_and_the_call_has_none(
    settings: Settings, exporter: InMemorySpanExporter
) -> None:
    journal: list[str] = []
    refused = ProviderRateLimited("slow down")
    chain = PolicyChain(_recorders(journal, "abc", b={"raise_before": refused}))
    chain_spans.run(chain, make_ctx(settings), recording_call(journal), lambda c: None)
    assert _outcomes(exporter.get_finished_spans()) == {
        "middleware.B": refused.code,
        "middleware.A": refused.code,
        "job.settle": None,
    }
    exporter.clear()

    skipping = PolicyChain(_recorders(journal, "ab", b={"raise_before": SkipAttempt()}))
    chain_spans.run(skipping, make_ctx(settings), recording_call(journal), lambda c: None)
    assert _outcomes(exporter.get_finished_spans()) == {"middleware.B": "skipped", "middleware.A": "skipped"}


def test_an_answer_before_the_call_ends_the_chain_there_with_no_provider_span(
    settings: Settings, exporter: InMemorySpanExporter
) -> None:
    journal: list[str] = []
    chain = PolicyChain(_recorders(journal, "abc", b={"answer": completion()}))
    chain_spans.run(chain, make_ctx(settings), recording_call(journal), lambda c: None)
    assert set(_outcomes(exporter.get_finished_spans())) == {"middleware.A", "middleware.B", "job.settle"}


def test_tracing_off_runs_the_plain_chain_and_records_nothing(settings: Settings) -> None:
    memory = InMemorySpanExporter()
    tracing.install([memory], "switchyard-test", batched=False)
    tracing.stop()
    journal: list[str] = []
    seen: list[str | None] = []

    def call(ctx: CallContext) -> object:
        seen.append(None if tracing.outgoing_headers() is None else "traceparent")
        return completion()

    chain_spans.run(PolicyChain(_recorders(journal, "ab")), make_ctx(settings), call, lambda c: None)  # type: ignore[arg-type]

    assert memory.get_finished_spans() == () and seen == [None]
    assert journal[:2] == ["a.before", "b.before"]


def test_a_traced_message_carries_the_traceparent_in_its_headers(settings: Settings) -> None:
    celery = create_celery(settings)
    queue = f"tier.trace{uuid.uuid4().hex[:6]}.live"
    traced = MessageTemplate(celery, "switchyard.run_job", queue, traced=True)
    plain = MessageTemplate(celery, "switchyard.run_job", queue)

    assert json.loads(traced.encode("job_abc", 0, TRACEPARENT))["headers"]["traceparent"] == TRACEPARENT
    assert json.loads(traced.encode("job_abc", 0, 'x"}'))["headers"]["traceparent"] == ""  # not JSON-safe
    assert "traceparent" not in json.loads(plain.encode("job_abc", 0))["headers"]
