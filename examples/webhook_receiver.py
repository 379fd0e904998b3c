"""An example receiver of Switchyard webhooks: verify, dedupe, then handle each event once.

    WEBHOOK_SECRETS=whsec_...[,whsec_old...] .venv/bin/uvicorn --factory \
        examples.webhook_receiver:app_from_environment --port 9000

then register ``http://<public host>:9000/switchyard`` with ``POST /v1/webhook-endpoints``
(its answer shows the endpoint's secret once), or read the secret for jobs' one-off
``callback_url`` with ``GET /v1/webhook-secret``. Give both secrets while one is rotated.
Set ``REDIS_URL`` to share the dedupe between several receiver processes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request, Response

from schemas.webhook_receiver import DedupeStore, InvalidWebhook, MemoryDedupe, RedisDedupe, WebhookReceiver

Handler = Callable[[dict[str, Any]], None]


def print_event(event: dict[str, Any]) -> None:
    """The example's handling: print what happened to which job or batch."""
    data = event["data"]
    print(f"{event['type']}: {data.get('id')} {data.get('status')}")


def create_app(
    secrets: list[str], dedupe: DedupeStore | None = None, handle: Handler = print_event
) -> FastAPI:
    """A receiver app accepting deliveries signed with any of ``secrets``."""
    receiver = WebhookReceiver(secrets, dedupe or MemoryDedupe())
    app = FastAPI(title="Switchyard webhook receiver (example)")

    @app.post("/switchyard")
    async def receive(request: Request) -> Response:
        body = await request.body()
        try:
            delivery = receiver.receive(body, dict(request.headers))
        except InvalidWebhook as refused:
            # Not from Switchyard, altered, or replayed late: refuse it, do not act on it.
            return Response(status_code=400, content=refused.reason)
        if delivery.duplicate:
            return Response(status_code=204)  # a retry of an event already handled
        try:
            handle(delivery.event)
        except Exception:
            receiver.forget(delivery.webhook_id)  # so Switchyard's retry is handled again
            return Response(status_code=500)
        return Response(status_code=204)

    return app


def app_from_environment() -> FastAPI:
    """The app from ``WEBHOOK_SECRETS`` (comma-separated) and, optionally, ``REDIS_URL``."""
    secrets = [secret.strip() for secret in os.environ["WEBHOOK_SECRETS"].split(",") if secret.strip()]
    redis_url = os.environ.get("REDIS_URL")
    if redis_url:
        from redis import Redis

        return create_app(secrets, RedisDedupe(Redis.from_url(redis_url)))
    return create_app(secrets)
