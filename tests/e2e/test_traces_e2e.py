"""Traces across real processes: the API under uvicorn and a prefork Celery worker, both with
``OTEL_TRACES_EXPORTER=console``, a provider and a webhook receiver on loopback.

The job's trace continues the caller's ``traceparent`` through the Celery message into the
worker's child process: the spans both processes print carry the caller's trace id, and the
provider and the receiver are called with a ``traceparent`` of that trace.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis
from sqlmodel import Session
from tests_support import TEST_CONFIG, delete_tier_queues, make_test_settings
from trace_support import TRACEPARENT, Provider, loopback_provider  # noqa: F401  (the provider fixture)
from webhook_receiver import WebhookReceiverServer

from api.keys import create_key, create_tenant
from infra.launch import ProcessGroup, api_argv, free_port, wait_http, worker_argv
from workers.celery_app import create_celery
from workers.db import make_engine
from workers.keys import tier_queues
from workers.middleware import default_chain
from workers.migrate import upgrade
from workers.runtime import Runtime

pytestmark = pytest.mark.e2e
TRACE_ID = TRACEPARENT.split("-")[1]
TIER = "traced"  # its own tier: see tests/switchyard-test.toml


@dataclass
class TracedStack:
    api_url: str
    key: str
    log_dir: Path
    receiver: WebhookReceiverServer
    middleware: set[str]  # the span name of every middleware of the chain


@pytest.fixture(scope="module")
def traced(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, provider: Provider
) -> Iterator[TracedStack]:
    var_dir = tmp_path_factory.mktemp("traced")
    settings = make_test_settings(var_dir, redis_url)
    upgrade(settings)
    engine = make_engine(settings)
    with Session(engine) as session:
        tenant = create_tenant(session, f"traces-{settings.key_prefix}")
        session.flush()
        key = create_key(session, tenant.id, {"submit", "read"})
        session.commit()
    engine.dispose()
    env = {
        **os.environ,
        "SWITCHYARD_CONFIG_FILE": str(TEST_CONFIG),
        "SWITCHYARD_VAR_DIR": str(var_dir),
        "SWITCHYARD_REDIS_URL": redis_url,
        "SWITCHYARD_DATABASE_URL": settings.database_url,
        "SWITCHYARD_KEY_PREFIX": settings.key_prefix,
        "SWITCHYARD_PROVIDERS__EMULATOR__BASE_URL": provider.url,
        "SWITCHYARD_WEBHOOKS__ALLOW_LOOPBACK": "true",
        "SWITCHYARD_WEBHOOKS__FIRST_ATTEMPT": "in_process",
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # milliseconds between the span processor's exports
    }
    processes = ProcessGroup(log_dir=var_dir, env=env)
    receiver = WebhookReceiverServer(["whsec_dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0"]).start()
    port = free_port()
    try:
        processes.start("api", api_argv(port, log_level="warning"))
        processes.start("worker", worker_argv(tier_queues(TIER), 2, "traced"))
        wait_http(f"http://127.0.0.1:{port}/readyz", alive=processes.check_alive)
        runtime = Runtime(settings=settings, celery=create_celery(settings))
        chain = {f"middleware.{type(m).__name__}" for m in default_chain(runtime).middleware}
        runtime.engine.dispose()
        runtime.redis.close()
        yield TracedStack(f"http://127.0.0.1:{port}", key, var_dir, receiver, chain)
    finally:
        processes.stop_all()
        receiver.stop()
        delete_tier_queues(Redis.from_url(redis_url), [TIER], settings.key_prefix)


def printed_spans(log: Path) -> list[dict[str, Any]]:
    """The spans the console exporter printed into a process's log (JSON objects among lines)."""
    text = log.read_text(errors="replace") if log.exists() else ""
    decoder, spans, at = json.JSONDecoder(), [], text.find('{\n    "name"')
    while at != -1:
        span, end = decoder.raw_decode(text, at)
        spans.append(span)
        at = text.find('{\n    "name"', end)
    return spans


def spans_of_trace(stack: TracedStack, process: str, wanted: set[str], timeout: float = 30.0) -> set[str]:
    """Names of the trace's spans ``process`` printed, once ``wanted`` are all among them."""
    deadline, names = time.monotonic() + timeout, set()
    while time.monotonic() < deadline:
        spans = printed_spans(stack.log_dir / f"{process}.log")
        names = {s["name"] for s in spans if s["context"]["trace_id"] == f"0x{TRACE_ID}"}
        if wanted <= names:
            break
        time.sleep(0.2)
    return names


def test_the_callers_trace_runs_through_the_api_the_worker_the_provider_and_the_webhook(
    traced: TracedStack, provider: Provider
) -> None:
    headers = {"Authorization": f"Bearer {traced.key}", "traceparent": TRACEPARENT}
    body = {
        "tier": TIER,
        "cache": "off",
        "callback_url": traced.receiver.url,
        "request": {"messages": [{"role": "user", "content": "Hi"}]},
    }
    submitted = httpx.post(f"{traced.api_url}/v1/jobs", json=body, headers=headers, timeout=10)
    assert submitted.status_code == 202, submitted.text
    job = httpx.get(
        f"{traced.api_url}/v1/jobs/{submitted.json()['id']}?wait=30", headers=headers, timeout=40
    ).json()
    assert job["status"] == "succeeded", job
    arrival = traced.receiver.wait_for(1)[0]

    assert [seen["traceparent"].split("-")[1] for seen in provider.seen] == [TRACE_ID]
    assert arrival.headers["traceparent"].split("-")[1] == TRACE_ID
    assert "job.submit" in spans_of_trace(traced, "api", {"job.submit"})
    worker_side = {"job.queue_wait", "job.attempt", "provider.call", "job.settle", "webhook.delivery"}
    names = spans_of_trace(traced, "worker", worker_side | {"middleware.Routing"})
    assert worker_side <= names
    assert {name for name in names if name.startswith("middleware.")} == traced.middleware
