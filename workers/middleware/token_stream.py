"""Token streaming: a streaming chat job's text goes to its Redis token stream as it comes.

The sink (``workers/token_stream.py``) is handed to the call through ``ctx.on_text``; an
adapter that cannot stream answers in one piece and the sink stays unused. It runs after
rate limiting, so the sink belongs to the attempt that makes the call.
"""

from __future__ import annotations

from redis import Redis

from schemas.openai import ChatRequest
from workers.chain import CallContext, Middleware
from workers.keys import RedisKeys
from workers.token_stream import TokenPublisher


class TokenStreaming(Middleware):
    """Gives a streaming job's call a sink that publishes its deltas (GET /v1/jobs/{id}/stream)."""

    def __init__(self, redis: Redis, keys: RedisKeys) -> None:
        self.redis = redis
        self.keys = keys

    def before_call(self, ctx: CallContext) -> None:
        if isinstance(ctx.request, ChatRequest) and ctx.request.stream:
            streaming = ctx.settings.streaming
            ctx.on_text = TokenPublisher.for_job(self.redis, self.keys, streaming, ctx.job.id, ctx.attempt)
