"""Scripted and random faults of the provider emulator, and OpenAI-shaped error bodies.

A scripted fault is an HTTP status (400, 401, 429, 500, 503) or a pseudo status: "timeout"
(hang, then answer normally) or "malformed" (a 200 whose body is not a chat.completion).
Per model, queued "sequence" faults come first, then the "always" cycle; the model "*"
applies to every model that has no plan of its own.
"""

import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = int | Literal["timeout", "malformed"]
WILDCARD = "*"

# status -> (type, code, message), as OpenAI answers them.
ERRORS: dict[int, tuple[str, str, str]] = {
    400: ("invalid_request_error", "invalid_request", "Invalid request (emulated fault)."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    429: ("rate_limit_error", "rate_limit_exceeded", "Rate limit reached (emulated fault)."),
    500: ("server_error", "internal_error", "The server had an error processing your request."),
    503: ("server_error", "service_unavailable", "The engine is currently overloaded."),
}
SCRIPTABLE: frozenset[Kind] = frozenset([*ERRORS, "timeout", "malformed"])
MALFORMED_BODIES = (
    b'{"id": 1, "object": "chat.completion", "choices": "oops"}',
    b'{"id": "chatcmpl-truncated", "object": "chat.completion", "choices": [{"index": 0, "mes',
)


def error_body(status: int, message: str | None = None, param: str | None = None) -> dict[str, Any]:
    """Build OpenAI's error body for an HTTP status."""
    kind, code, default = ERRORS.get(status, ("server_error", "error", "Emulated error."))
    return {"error": {"message": message or default, "type": kind, "param": param, "code": code}}


@dataclass(frozen=True)
class Fault:
    """One scripted answer: a status or pseudo status, and its timing options."""

    kind: Kind
    retry_after_s: float = 1.0
    hang_s: float = 30.0


@dataclass
class FaultCycle:
    """Faults answered forever, in turn."""

    faults: list[Fault]
    position: int = 0

    def next(self) -> Fault:
        """Return the next fault of the cycle."""
        fault = self.faults[self.position % len(self.faults)]
        self.position += 1
        return fault


@dataclass
class FaultPlan:
    """Scripted faults and extra latency per model, plus random server errors."""

    seed: int = 0
    queued: dict[str, deque[Fault]] = field(default_factory=dict)
    always: dict[str, FaultCycle] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)
    malformed_count: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def script(self, model: str, faults: list[Fault], mode: str) -> None:
        """Queue faults for a model ("sequence") or make them its permanent answer ("always")."""
        if mode == "always":
            if faults:
                self.always[model] = FaultCycle(faults)
            else:
                self.always.pop(model, None)
        elif faults:
            self.queued.setdefault(model, deque()).extend(faults)

    def clear(self) -> None:
        """Drop every scripted fault and per-model latency, and reseed the random faults."""
        self.queued.clear()
        self.always.clear()
        self.latency_ms.clear()
        self.malformed_count = 0
        self.rng = random.Random(self.seed)

    def next_scripted(self, model: str) -> Fault | None:
        """Take the next scripted fault for a model, if any."""
        for name in (model, WILDCARD):
            queue = self.queued.get(name)
            if queue:
                return queue.popleft()
        cycle = self.always.get(model) or self.always.get(WILDCARD)
        return cycle.next() if cycle else None

    def random_status(self, fail_rate: float) -> int | None:
        """Draw a random 500 or 503 with probability fail_rate."""
        if fail_rate <= 0 or self.rng.random() >= fail_rate:
            return None
        return self.rng.choice((500, 503))

    def extra_latency_s(self, model: str) -> float:
        """Return the extra latency scripted for a model, in seconds."""
        return self.latency_ms.get(model, self.latency_ms.get(WILDCARD, 0.0)) / 1000

    def malformed_body(self) -> bytes:
        """Return the next malformed body, alternating a wrong shape and truncated JSON."""
        body = MALFORMED_BODIES[self.malformed_count % len(MALFORMED_BODIES)]
        self.malformed_count += 1
        return body

    def describe(self) -> dict[str, Any]:
        """Return the plan as JSON-ready data."""
        return {
            "queued": {m: [f.kind for f in q] for m, q in self.queued.items() if q},
            "always": {m: [f.kind for f in c.faults] for m, c in self.always.items()},
            "latency_ms": dict(self.latency_ms),
        }
