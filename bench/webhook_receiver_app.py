"""The receiver of ``bench/webhooks.py``: verifies each delivery's signature and records when
it arrived (``<job id> <unix time> <webhook-id>`` pushed to a Redis list)."""

from __future__ import annotations

import os
import time

from fastapi import FastAPI, Request, Response
from redis import Redis
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


def create_app() -> FastAPI:
    """The app, configured by BENCH_WEBHOOK_SECRET, BENCH_REDIS_URL and BENCH_RECEIPTS_KEY."""
    verifier = Webhook(os.environ["BENCH_WEBHOOK_SECRET"])
    redis = Redis.from_url(os.environ["BENCH_REDIS_URL"])
    receipts = os.environ["BENCH_RECEIPTS_KEY"]
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> Response:
        body = await request.body()
        arrived = time.time()
        try:
            event = verifier.verify(body, dict(request.headers))
        except WebhookVerificationError:
            return Response(status_code=401)
        redis.rpush(receipts, f"{event['data']['id']} {arrived} {request.headers['webhook-id']}")
        return Response(status_code=204)

    return app
