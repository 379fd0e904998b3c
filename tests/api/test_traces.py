"""One trace per job: the in-process API and a worker runtime on real Redis and the database,
a provider and a webhook receiver on loopback, and the SDK's in-memory exporter.

A job submitted with a W3C ``traceparent`` gets spans in the caller's trace for its submission,
its wait on the queue, its attempt, every middleware of the chain, the provider call and its
webhook attempt; the provider and the receiver get a ``traceparent`` of that trace. With
tracing off nothing is recorded and nothing is sent.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_harness import ApiHarness, open_api
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from trace_support import TRACEPARENT, Provider, loopback_provider  # noqa: F401  (the provider fixture)
from webhook_receiver import WebhookReceiverServer

from workers import tracing
from workers.celery_app import create_celery
from workers.dispatch import priority_keys
from workers.job_runner import run_job
from workers.keys import tier_queue
from workers.middleware import default_chain
from workers.runtime import Runtime

TRACE_ID, CALLER_SPAN = TRACEPARENT.split("-")[1:3]
SECRET = "whsec_" + base64.b64encode(b"t" * 24).decode()


class Env(ApiHarness):
    worker: Runtime
    provider: Provider
    receiver: WebhookReceiverServer

    def submit(self, headers: dict[str, str]) -> str:
        body = {
            "tier": self.tier,
            "cache": "off",
            "callback_url": self.receiver.url,
            "request": {"messages": [{"role": "user", "content": "secret prompt text"}]},
        }
        answer = self.client.post("/v1/jobs", json=body, headers=headers)
        assert answer.status_code == 202, answer.text
        return str(answer.json()["id"])

    def message_traceparent(self, job_id: str) -> str | None:
        """The ``traceparent`` header of the job's Celery message (taken off the queue)."""
        for key in priority_keys(tier_queue(self.tier, "live")):
            for raw in self.redis.lrange(key, 0, -1):
                envelope = json.loads(raw)
                if envelope["headers"]["argsrepr"] == repr([job_id]):
                    self.redis.lrem(key, 1, raw)  # type: ignore[arg-type]
                    value = envelope["headers"].get("traceparent")
                    return str(value) if value is not None else None
        raise AssertionError(f"no message for {job_id}")


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    tracing.install([memory], "switchyard-test", batched=False)
    yield memory
    tracing.stop()


@pytest.fixture
def env(tmp_path: Path, redis_url: str, database_url: str, provider: Provider) -> Iterator[Env]:
    receiver = WebhookReceiverServer([SECRET]).start()
    hooks = {"allow_loopback": True, "first_attempt": "in_process"}
    with open_api(
        Env,
        tmp_path,
        redis_url,
        database_url,
        {"tier": ["emu-a"], "other_tier": ["emu-a"]},
        providers={"emulator": {"base_url": provider.url}},
        webhooks=hooks,
    ) as api:
        api.worker = Runtime(settings=api.settings, celery=create_celery(api.settings))
        api.provider, api.receiver = provider, receiver
        provider.seen.clear()
        yield api
        api.worker.engine.dispose()
        api.worker.redis.close()
    receiver.stop()


def _trace_id(traceparent: str) -> str:
    return traceparent.split("-")[1]


def _named(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


def _spans_once_ended(exporter: InMemorySpanExporter, name: str, timeout: float = 10.0) -> list[ReadableSpan]:
    """Every finished span, once one called ``name`` is among them."""
    deadline = time.monotonic() + timeout
    while not _named(list(exporter.get_finished_spans()), name) and time.monotonic() < deadline:
        time.sleep(0.02)
    return list(exporter.get_finished_spans())


def test_a_job_submitted_with_a_traceparent_has_every_span_in_the_callers_trace(
    env: Env, exporter: InMemorySpanExporter
) -> None:
    headers = {**env.tenant({"submit", "read"}), "traceparent": TRACEPARENT}
    job_id = env.submit(headers)
    carried = env.message_traceparent(job_id)
    assert carried is not None and _trace_id(carried) == TRACE_ID

    run_job(env.worker, job_id, carried)
    arrival = env.receiver.wait_for(1)[0]

    spans = _spans_once_ended(exporter, "webhook.delivery")  # a sender thread ends it
    assert {format(span.context.trace_id, "032x") for span in spans} == {TRACE_ID}
    [submit] = _named(spans, "job.submit")
    assert submit.parent is not None and format(submit.parent.span_id, "016x") == CALLER_SPAN
    assert format(submit.context.span_id, "016x") == carried.split("-")[2]  # the message carries it
    [wait] = _named(spans, "job.queue_wait")
    [attempt] = _named(spans, "job.attempt")
    assert wait.start_time is not None and wait.end_time is not None and wait.start_time <= wait.end_time
    assert attempt.attributes is not None and attempt.attributes["switchyard.job_id"] == job_id
    assert (
        attempt.attributes["switchyard.outcome"] == "ok" and attempt.attributes["switchyard.model"] == "emu-a"
    )
    chain = default_chain(env.worker).middleware
    middleware = [span.name for span in spans if span.name.startswith("middleware.")]
    assert sorted(middleware) == sorted(f"middleware.{type(m).__name__}" for m in chain)
    [call] = _named(spans, "provider.call")
    assert call.attributes is not None and call.attributes["switchyard.provider"] == "emulator"
    [delivery] = _named(spans, "webhook.delivery")
    assert _named(spans, "job.settle") and delivery.attributes is not None
    assert delivery.attributes["switchyard.outcome"] == "http_401"  # the receiver knows another secret
    # The provider and the receiver were called from inside their spans, in the job's trace.
    [sent] = env.provider.seen
    assert sent["traceparent"].split("-")[1:3] == [TRACE_ID, format(call.context.span_id, "016x")]
    assert _trace_id(arrival.headers["traceparent"]) == TRACE_ID
    assert not any("secret prompt text" in json.dumps(dict(span.attributes or {})) for span in spans)


def test_middleware_spans_nest_like_the_chain_around_the_provider_call(
    env: Env, exporter: InMemorySpanExporter
) -> None:
    job_id = env.submit({**env.tenant({"submit", "read"}), "traceparent": TRACEPARENT})
    run_job(env.worker, job_id, env.message_traceparent(job_id))

    spans = {span.context.span_id: span for span in exporter.get_finished_spans()}
    [call] = [span for span in spans.values() if span.name == "provider.call"]
    lineage = []
    parent = call.parent
    while parent is not None and parent.span_id in spans:
        lineage.append(spans[parent.span_id].name)
        parent = spans[parent.span_id].parent
    names = [f"middleware.{type(m).__name__}" for m in default_chain(env.worker).middleware]
    assert lineage == [*reversed(names), "job.attempt", "job.submit"]


def test_a_message_without_the_header_finds_the_trace_under_the_jobs_id(
    env: Env, exporter: InMemorySpanExporter
) -> None:
    job_id = env.submit({**env.tenant({"submit", "read"}), "traceparent": TRACEPARENT})
    env.message_traceparent(job_id)
    assert 0 < env.redis.ttl(env.services.keys.trace_context(job_id)) <= tracing.CONTEXT_TTL_S

    run_job(env.worker, job_id)  # as the reconciler's republished message would run it

    [attempt] = _named(list(exporter.get_finished_spans()), "job.attempt")
    assert format(attempt.context.trace_id, "032x") == TRACE_ID


def test_a_job_submitted_without_a_traceparent_starts_a_trace_of_its_own(
    env: Env, exporter: InMemorySpanExporter
) -> None:
    job_id = env.submit(env.tenant({"submit", "read"}))
    run_job(env.worker, job_id, env.message_traceparent(job_id))

    spans = list(exporter.get_finished_spans())
    [submit] = _named(spans, "job.submit")
    assert submit.parent is None
    assert {span.context.trace_id for span in spans} == {submit.context.trace_id}


def test_a_caller_that_does_not_sample_gets_no_spans_but_its_trace_goes_on(
    env: Env, exporter: InMemorySpanExporter
) -> None:
    unsampled = TRACEPARENT.removesuffix("-01") + "-00"
    job_id = env.submit({**env.tenant({"submit", "read"}), "traceparent": unsampled})
    run_job(env.worker, job_id, env.message_traceparent(job_id))
    arrival = env.receiver.wait_for(1)[0]

    assert exporter.get_finished_spans() == ()
    [sent] = env.provider.seen
    assert sent["traceparent"].split("-")[1] == TRACE_ID and sent["traceparent"].endswith("-00")
    assert _trace_id(arrival.headers["traceparent"]) == TRACE_ID


def test_tracing_off_records_nothing_and_sends_no_traceparent(env: Env) -> None:
    memory = InMemorySpanExporter()
    tracing.install([memory], "switchyard-test", batched=False)
    tracing.stop()
    headers = {**env.tenant({"submit", "read"}), "traceparent": TRACEPARENT}
    job_id = env.submit(headers)
    assert env.message_traceparent(job_id) is None

    run_job(env.worker, job_id)
    arrival = env.receiver.wait_for(1)[0]

    assert memory.get_finished_spans() == ()
    assert "traceparent" not in env.provider.seen[0] and "traceparent" not in arrival.headers
    assert env.redis.get(env.services.keys.trace_context(job_id)) is None
