"""The emulated provider: one model call's path through faults, rate limits and latency.

Order of a call: a scripted fault (which spends no rate-limit capacity), then the RPM/TPM
window (429 when over), then a random 500/503 at `fail_rate`, then latency, then the reply.
Errors answer at once; latency applies to replies only, as slow generation would.

Rate limits are per model, as OpenAI's are: each model name gets its own RPM/TPM windows on
first use, all with the configured limits, and a response's x-ratelimit-* headers come from
its model's windows (a 400 for a body that could not be parsed carries none).

Token accounting: admission spends the call's estimated cost (prompt plus max_tokens) in the
model's TPM window; once the reply is built, that spend is corrected to the tokens the reply
used (see limits.py). The reply's own headers are taken at admission, so the correction shows
from the next response on. Errors after admission (random 500/503, malformed bodies) keep the
estimate.
"""

import asyncio
import json
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request, Response

from infra.emulator.batches import BatchPlan, EmulatedBatch
from infra.emulator.calls import BadRequest
from infra.emulator.faults import Fault, FaultPlan, error_body
from infra.emulator.files import FileStore
from infra.emulator.limits import Decision, RateLimiter, format_duration
from infra.emulator.streaming import streamed

Build = Callable[[], tuple[dict[str, Any], int]]


@dataclass
class EmulatorConfig:
    """Limits, latency and faults of an emulator; None means no limit."""

    rpm: int | None = None
    tpm: int | None = None
    latency_ms: float = 0.0
    fail_rate: float = 0.0
    seed: int = 0
    window_s: float = 60.0
    batch_delay_s: float = 0.5  # how long a batch stays in_progress before its lines are answered
    api_key: str | None = None  # the one key /v1 calls must carry; None takes any (auth.py)


@dataclass
class Stats:
    """Counters of the calls the emulator answered on its /v1 model routes."""

    requests: int = 0
    tokens: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    by_model: Counter[str] = field(default_factory=Counter)
    batches: int = 0  # batches created (their lines are not requests on the live routes)
    batch_lines: int = 0


def retry_headers(seconds: float) -> dict[str, str]:
    """Return retry-after (whole seconds, rounded up) and retry-after-ms headers."""
    return {
        "retry-after": str(math.ceil(seconds)),
        "retry-after-ms": str(math.ceil(seconds * 1000)),
    }


class Emulator:
    """The emulator's mutable state: config, per-model rate limiters, fault plan and counters."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.limiters: dict[str, RateLimiter] = {}
        self.plan = FaultPlan(seed=config.seed)
        self.stats = Stats()
        self.files = FileStore()
        self.batches: dict[str, EmulatedBatch] = {}
        self.batch_tasks: set[asyncio.Task[None]] = set()
        self.batch_plan = BatchPlan(config.batch_delay_s)

    def limiter(self, model: str) -> RateLimiter:
        """Return a model's rate limiter, created with the configured limits on first use."""
        limiter = self.limiters.get(model)
        if limiter is None:
            limiter = RateLimiter(self.config.rpm, self.config.tpm, self.config.window_s)
            self.limiters[model] = limiter
        return limiter

    def reconfigure(self) -> None:
        """Apply a changed config to every model's rate limiter."""
        for limiter in self.limiters.values():
            limiter.configure(self.config.rpm, self.config.tpm, self.config.window_s)

    def reset(self) -> None:
        """Reset counters, every model's rate-limit windows and faults."""
        self.stats = Stats()
        for limiter in self.limiters.values():
            limiter.reset()
        self.plan.clear()
        self.batch_plan = BatchPlan(self.config.batch_delay_s)

    def respond(self, status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
        """Count and build a JSON response; body is JSON-ready data or raw bytes."""
        self.stats.by_status[str(status)] += 1
        raw = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":"))
        return Response(raw, status, headers, media_type="application/json")

    def bad_request(self, error: BadRequest) -> Response:
        """Answer a request the emulator could not parse; its model is unknown, so no limit headers."""
        self.stats.requests += 1
        return self.respond(400, error_body(400, str(error), error.param))

    async def call(
        self, model: str, cost: int, build: Build, stream: bool = False, include_usage: bool = False
    ) -> Response:
        """Answer one model call: scripted fault, rate limit, random fault, latency, reply.

        A streamed reply spends its latency between its chunks instead of before them.
        """
        self.stats.requests += 1
        self.stats.by_model[model] += 1
        fault = self.plan.next_scripted(model)
        limiter = self.limiter(model)
        if fault and isinstance(fault.kind, int):
            return self.scripted_error(fault.kind, fault, limiter)
        if fault and fault.kind == "timeout":
            await asyncio.sleep(fault.hang_s)
        decision = limiter.acquire(cost)
        if not decision.allowed:
            return self.rate_limited(decision, limiter, model, cost)
        status = self.plan.random_status(self.config.fail_rate)
        if status:
            return self.respond(status, error_body(status), decision.headers)
        delay = self.config.latency_ms / 1000 + self.plan.extra_latency_s(model)
        if delay > 0 and not stream:
            await asyncio.sleep(delay)
        if fault and fault.kind == "malformed":
            return self.respond(200, self.plan.malformed_body(), decision.headers)
        payload, tokens = build()
        limiter.settle(decision, tokens)
        self.stats.tokens += tokens
        if stream:
            self.stats.by_status["200"] += 1
            return streamed(payload, include_usage, delay, decision.headers)
        return self.respond(200, payload, decision.headers)

    def scripted_error(self, status: int, fault: Fault, limiter: RateLimiter) -> Response:
        """Answer a scripted error status with the model's limit headers; a 429 adds retry-after."""
        headers = limiter.headers()
        if status == 429:
            headers.update(retry_headers(fault.retry_after_s))
        return self.respond(status, error_body(status), headers)

    def rate_limited(self, decision: Decision, limiter: RateLimiter, model: str, cost: int) -> Response:
        """Answer 429 for a request the model's sliding window refused."""
        window = limiter.windows[decision.exceeded]
        asked = 1 if decision.exceeded == "requests" else cost
        message = (
            f"Rate limit reached for {model} on {decision.exceeded}: Limit {window.limit}, "
            f"Used {window.used}, Requested {asked}. "
            f"Please try again in {format_duration(decision.retry_after_s)}."
        )
        headers = {**decision.headers, **retry_headers(decision.retry_after_s)}
        return self.respond(429, error_body(429, message), headers)


def current_emulator(request: Request) -> Emulator:
    """Return the emulator state of the app serving a request."""
    emulator: Emulator = request.app.state.emulator
    return emulator
