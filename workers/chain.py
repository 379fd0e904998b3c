"""The policy chain: ordered middleware around one provider call, nesting like an onion.

``before_call`` runs in list order; a middleware may set ``ctx.response`` to skip the call
(a cache hit). ``after_call`` runs in reverse order. If anything raises a
:class:`SwitchyardError`, ``on_error`` runs in reverse order on every middleware entered.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from schemas.errors import SwitchyardError
from schemas.openai import ChatRequest, EmbeddingRequest
from schemas.settings import ModelConfig, Settings
from schemas.tables import Job
from workers.cache.results import CachedResult
from workers.providers.base import AnyResponse
from workers.ratelimit.limiter import Grant


@dataclass(frozen=True)
class Route:
    """The model a call goes to: its alias, its config and its provider's name."""

    alias: str
    model: ModelConfig

    @property
    def provider(self) -> str:
        return self.model.provider


@dataclass
class CallContext:
    """Everything the middleware of one attempt share."""

    job: Job
    settings: Settings
    request: ChatRequest | EmbeddingRequest  # by the job's kind
    route: Route | None = None
    response: AnyResponse | None = None
    error: SwitchyardError | None = None
    latency_ms: float = 0.0
    cost_usd: float = 0.0
    retry_in: float | None = None
    attempt_record: dict[str, Any] = field(default_factory=dict)
    called: bool = False  # the provider was called (a hand-back for capacity calls nothing)
    grant: Grant | None = None  # rate-limit capacity taken for this call
    cached: CachedResult | None = None  # a semantic hit answered the job: no call
    semantic_probe: Any = None  # the namespace, text and embedding the lookup computed

    @property
    def attempt(self) -> int:
        return self.job.attempts


class Middleware:
    """A policy around the provider call; override the hooks you need."""

    def before_call(self, ctx: CallContext) -> None:
        """Runs before the call, in chain order."""

    def after_call(self, ctx: CallContext) -> None:
        """Runs after a successful call, in reverse chain order."""

    def on_error(self, ctx: CallContext) -> None:
        """Runs when the attempt failed (``ctx.error`` is set), in reverse chain order."""


ProviderCall = Callable[[CallContext], AnyResponse]


class PolicyChain:
    """Runs middleware around a provider call."""

    def __init__(self, middleware: Sequence[Middleware]) -> None:
        self.middleware = list(middleware)

    def run(self, ctx: CallContext, call: ProviderCall) -> None:
        """One attempt: hooks, the call, and the hooks again; errors land in ``ctx.error``."""
        entered: list[Middleware] = []
        try:
            for middleware in self.middleware:
                middleware.before_call(ctx)
                entered.append(middleware)
                if ctx.response is not None:
                    break
            if ctx.response is None:
                ctx.response = self._timed(ctx, call)
            while entered:
                entered[-1].after_call(ctx)
                entered.pop()
        except SwitchyardError as exc:
            ctx.error = exc
            while entered:
                entered.pop().on_error(ctx)

    @staticmethod
    def _timed(ctx: CallContext, call: ProviderCall) -> AnyResponse:
        started = time.perf_counter()
        ctx.called = True
        try:
            return call(ctx)
        finally:
            ctx.latency_ms = round((time.perf_counter() - started) * 1000, 2)
