"""The baseline of ``bench/ratelimit.py``: plain Celery tasks that call a rate-limited provider.

This is what a user of plain Celery writes to stay under a provider's limit: one task that
calls ``/v1/chat/completions`` through the official ``openai`` SDK with its default client
settings (two retries of its own, which honour ``retry-after``), Celery's ``rate_limit`` set to
the provider's limit per second, and Celery retries with exponential backoff on
``openai.RateLimitError`` (``max_retries=3``). Celery enforces ``rate_limit`` per worker
instance, so N workers may send N times the limit between them.

Redis broker and result backend on one URL, with the delivery settings of
``bench/bare_celery_app.py`` (acks late, reject on worker lost, prefetch one). The worker
runs ``celery -A ratelimit_baseline_app worker`` with ``bench/`` on ``PYTHONPATH`` and the
settings below in its environment; the benchmark builds its client side with
:func:`make_baseline_app` on the same Redis URL.
"""

from __future__ import annotations

import os
import time
from typing import Any

import openai
from bare_celery_app import plain_celery_app
from celery import Celery

BASELINE_QUEUE = "bench.ratelimit"
BASELINE_TASK = "bench.ratelimit.chat"
REDIS_URL_ENV = "BENCH_RL_REDIS_URL"
BASE_URL_ENV = "BENCH_RL_BASE_URL"  # the emulator's /v1
RATE_ENV = "BENCH_RL_RATE"  # Celery rate_limit, e.g. "30/s"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/12"

_client: openai.OpenAI | None = None


def provider_client(base_url: str) -> openai.OpenAI:
    """One SDK client per pool process, made after the fork, with the SDK's default settings."""
    global _client
    if _client is None:
        _client = openai.OpenAI(base_url=base_url, api_key="emulator-key")
    return _client


def make_baseline_app(redis_url: str, base_url: str = "", rate: str | None = None) -> Celery:
    """A Celery app on ``redis_url`` with the chat task (``base_url`` and ``rate``: worker side)."""
    celery_app = plain_celery_app("bench_ratelimit", redis_url, BASELINE_QUEUE, result_expires=3600)

    @celery_app.task(
        name=BASELINE_TASK,
        shared=False,
        rate_limit=rate,
        autoretry_for=(openai.RateLimitError,),
        retry_backoff=True,
        max_retries=3,
    )
    def chat(model: str, content: str, max_tokens: int) -> dict[str, Any]:
        """One chat completion; when the successful call started and ended (epoch seconds)."""
        started = time.time()
        response = provider_client(base_url).chat.completions.create(
            model=model, messages=[{"role": "user", "content": content}], max_tokens=max_tokens
        )
        finished = time.time()
        usage = response.usage
        return {"started": started, "finished": finished, "tokens": usage.total_tokens if usage else 0}

    return celery_app


# The worker side: ``-A ratelimit_baseline_app`` finds ``app``. The benchmark sets the environment.
app = make_baseline_app(
    os.environ.get(REDIS_URL_ENV, DEFAULT_REDIS_URL),
    os.environ.get(BASE_URL_ENV, ""),
    os.environ.get(RATE_ENV) or None,
)
