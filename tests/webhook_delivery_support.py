"""Helpers of the webhook delivery tests: a runtime on a compressed retry schedule, real
receivers, endpoints, events, the deliveries they made and single attempts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, select
from tests_support import make_test_settings
from webhook_receiver import WebhookReceiverServer

from schemas.settings import Settings, WebhookSettings
from schemas.tables import WebhookDelivery, WebhookEndpoint, utcnow
from workers.celery_app import create_celery
from workers.event import Event
from workers.migrate import upgrade
from workers.outcomes import Outcomes
from workers.runtime import Runtime
from workers.webhooks.delivery import Deliverer
from workers.webhooks.signing import new_secret
from workers.webhooks.transport import guarded_client

SCHEDULE = [0.0, 1.0, 2.0, 4.0, 8.0]  # five attempts, compressed; the real one is minutes to hours


def forget_keys(redis: Any, prefix: str) -> None:
    """Drop every key and queue of this test's prefix."""
    names = redis.keys(f"*{prefix}*")
    if names:
        redis.delete(*names)


@pytest.fixture
def rt(tmp_path: Path, redis_url: str, database_url: str) -> Iterator[Runtime]:
    """A migrated runtime whose webhooks retry on SCHEDULE, loopback allowed."""
    # First attempts through the queue, so each test makes every attempt itself.
    hooks = {"allow_loopback": True, "retry_schedule_s": SCHEDULE, "jitter": 0.0, "first_attempt": "queue"}
    settings = make_test_settings(tmp_path, redis_url, database_url, webhooks=hooks)
    upgrade(settings)
    runtime = Runtime(settings=settings, celery=create_celery(settings))
    yield runtime
    forget_keys(runtime.redis, settings.key_prefix)
    runtime.engine.dispose()


def receiver_for(
    receivers: list[WebhookReceiverServer], *secrets: str, script: list[int] | None = None
) -> Any:
    """A started receiver checking signatures with ``secrets`` (``script``: statuses to answer first)."""
    receiver = WebhookReceiverServer(list(secrets), script=list(script or [])).start()
    receivers.append(receiver)
    return receiver


def add_endpoint(rt: Runtime, tenant_id: str, url: str, **fields: Any) -> WebhookEndpoint:
    """A webhook endpoint row of the tenant (every event type unless ``fields`` say otherwise)."""
    now = utcnow()
    values = {"event_types": [], "secret": new_secret(), "created_at": now, "updated_at": now, **fields}
    row = WebhookEndpoint(id=f"we_{now.timestamp()}{len(url)}", tenant_id=tenant_id, url=url, **values)
    with Session(rt.engine, expire_on_commit=False) as session:
        session.add(row)
        session.commit()
    rt.redis.delete(rt.keys.webhook_endpoints(tenant_id))
    return row


def job_event(tenant_id: str, status: str = "succeeded", **data: Any) -> Event:
    """A job's final-state event."""
    job: dict[str, Any] = {
        "id": "job_1",
        "object": "job",
        "status": status,
        "result": {"choices": []},
        "callback_url": None,
    }
    return Event(tenant_id, f"job.{status}", {**job, **data})


def rows(rt: Runtime, tenant_id: str) -> list[WebhookDelivery]:
    """The tenant's deliveries, oldest first."""
    with Session(rt.engine) as session:
        query = select(WebhookDelivery).where(WebhookDelivery.tenant_id == tenant_id)
        return list(session.exec(query.order_by(col(WebhookDelivery.created_at))).all())


def only_delivery(rt: Runtime, tenant_id: str) -> WebhookDelivery:
    """The tenant's one delivery."""
    [row] = rows(rt, tenant_id)
    return row


def attempt(rt: Runtime, delivery: WebhookDelivery, deliverer: Deliverer | None = None) -> str:
    """One attempt of the delivery as it stands now; its outcome."""
    current = next(row for row in rows(rt, delivery.tenant_id) if row.id == delivery.id)
    return (deliverer or rt.outcomes.webhooks.deliverer).attempt(current.id, current.attempts)


def scripted_app(status: int, headers: dict[str, str]) -> Any:
    """A receiver app that answers every delivery with ``status`` and ``headers``."""
    from fastapi import FastAPI, Response

    app = FastAPI()

    @app.post("/hooks")
    def answer() -> Response:
        return Response(status_code=status, headers=headers)

    return app


def strict(rt: Runtime, resolver: Any = None) -> Deliverer:
    """A deliverer whose SSRF guard refuses loopback (``resolver`` stubs DNS)."""
    settings: Settings = rt.settings.model_copy(
        update={"webhooks": WebhookSettings.model_validate({"retry_schedule_s": SCHEDULE})}
    )
    client = guarded_client(settings.webhooks, resolver) if resolver else guarded_client(settings.webhooks)
    return Deliverer(settings, rt.engine, rt.redis, rt.keys, client)


def in_process(rt: Runtime, **hooks: Any) -> Any:
    """Outcomes whose first attempts the announcing process sends itself."""
    webhooks = rt.settings.webhooks.model_copy(update={"first_attempt": "in_process", **hooks})
    settings = rt.settings.model_copy(update={"webhooks": webhooks})
    return Outcomes(settings, rt.engine, rt.redis, rt.keys, rt.celery)
