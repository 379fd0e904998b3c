"""The policy chain: ordered middleware around one provider call, nesting like an onion.

One attempt runs ``before_call`` in list order; a middleware may set ``ctx.response`` to skip
the call (a cache hit). ``after_call`` runs in reverse order. If anything raises a
:class:`SwitchyardError`, ``on_error`` runs in reverse order on every middleware entered.
``wrap_call`` lets a middleware wrap the provider call itself (the soft time limit). Then the
caller's ``settle`` writes the outcome, and ``after_attempt`` runs in reverse order on every
middleware entered, settled or not (a slot to give back).

A middleware ends an attempt early, with no call and nothing left to settle, by raising
:class:`SkipAttempt` from ``before_call`` (the job was parked elsewhere).

Middleware keep their own per-attempt state in ``ctx.state(SomeState)``, a store keyed by a
class each middleware defines, so a new policy does not widen :class:`CallContext`. Redis
commands that should share the attempt's next round trip go in ``ctx.riders``, those that
must wait for the round trip announcing the job's end in ``ctx.end_riders``: whoever makes
such a round trip takes them (``ctx.take_riders()``) and queues them on its pipeline. The
middleware that added one checks in ``after_attempt`` whether it went, and sends it if not.

:meth:`PolicyChain.record` runs the after-call hooks for a call made outside the chain (a
provider batch's line), so a policy applies to both paths.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from redis.client import Pipeline

from schemas.errors import SwitchyardError
from schemas.openai import ChatRequest, EmbeddingRequest
from schemas.settings import ModelConfig, Settings
from schemas.tables import Job, Usage
from workers.providers.base import AnyResponse

State = TypeVar("State")
Rider = Callable[[Pipeline], object]
PROVIDER_BATCH_LANE = "provider_batch"  # the attempt entry's ``lane`` of a provider batch's call


@dataclass(frozen=True)
class Route:
    """The model a call goes to: its alias, its config and its provider's name.

    ``provider_batch`` names the provider batch that answered, on the Batch API lane.
    """

    alias: str
    model: ModelConfig
    provider_batch: str | None = None

    @property
    def provider(self) -> str:
        return self.model.provider

    @property
    def lane(self) -> str | None:
        """``provider_batch`` for a call answered by a provider batch; None for a live call."""
        return PROVIDER_BATCH_LANE if self.provider_batch is not None else None


@dataclass
class CallContext:
    """What the middleware of one attempt share: the call's inputs and its outcome."""

    job: Job
    settings: Settings
    request: ChatRequest | EmbeddingRequest  # by the job's kind
    route: Route | None = None
    on_text: Callable[[str], None] | None = None  # a streaming call hands its text here
    response: AnyResponse | None = None
    error: SwitchyardError | None = None
    latency_ms: float = 0.0
    cost_usd: float = 0.0
    retry_in: float | None = None
    attempt_record: dict[str, Any] = field(default_factory=dict)
    usage_row: Usage | None = None  # the usage table's row for this attempt's call
    called: bool = False  # the provider was called (a hand-back for capacity calls nothing)
    answered: dict[str, Any] | None = None  # the job's columns when answered with no call (a hit)
    riders: list[Rider] = field(default_factory=list)  # for the attempt's next Redis round trip
    end_riders: list[Rider] = field(default_factory=list)  # for the one announcing the job's end
    _states: dict[type, Any] = field(default_factory=dict, repr=False)

    @property
    def attempt(self) -> int:
        return self.job.attempts

    def state(self, kind: type[State]) -> State:
        """This attempt's ``kind`` (a middleware's own state class), made on first use."""
        found = self._states.get(kind)
        if found is None:
            found = self._states[kind] = kind()
        return cast(State, found)

    def take_riders(self, ending: bool = False) -> Rider | None:
        """The waiting riders as one function that queues them on a pipeline; None if none wait.

        ``ending``: the round trip announces the job's end, so the end riders go too.
        """
        riders, self.riders = self.riders, []
        if ending:
            riders, self.end_riders = riders + self.end_riders, []
        if not riders:
            return None

        def queue(pipe: Pipeline) -> None:
            for rider in riders:
                rider(pipe)

        return queue


ProviderCall = Callable[[CallContext], AnyResponse]
Settle = Callable[[CallContext], None]


class SkipAttempt(Exception):
    """Raised by ``before_call``: the job went elsewhere, so no call and nothing to settle."""


class Middleware:
    """A policy around the provider call; override the hooks you need."""

    def before_call(self, ctx: CallContext) -> None:
        """Runs before the call, in chain order."""

    def wrap_call(self, ctx: CallContext, call: ProviderCall) -> ProviderCall:
        """The call to make instead of ``call``; the first middleware's wrapper is outermost."""
        return call

    def after_call(self, ctx: CallContext) -> None:
        """Runs after a successful call, in reverse chain order."""

    def on_error(self, ctx: CallContext) -> None:
        """Runs when the attempt failed (``ctx.error`` is set), in reverse chain order."""

    def after_attempt(self, ctx: CallContext, settled: bool) -> None:
        """Runs last, in reverse chain order; ``settled`` is False when writing the outcome failed."""


class PolicyChain:
    """Runs middleware around a provider call."""

    def __init__(self, middleware: Sequence[Middleware]) -> None:
        self.middleware = list(middleware)
        # Only these wrap the call: the others would add a frame to every call for nothing.
        self._wrappers = [m for m in self.middleware if type(m).wrap_call is not Middleware.wrap_call]

    def run(self, ctx: CallContext, call: ProviderCall, settle: Settle | None = None) -> None:
        """One attempt: hooks, the call, the hooks again, then ``settle``; errors land in ``ctx.error``."""
        entered: list[Middleware] = []
        settled = False
        try:
            try:
                self._attempt(ctx, call, entered)
            except SkipAttempt:
                settled = True
                return
            if settle is not None:
                settle(ctx)
            settled = True
        finally:
            for middleware in reversed(entered):
                middleware.after_attempt(ctx, settled)

    def record(self, ctx: CallContext) -> None:
        """The after-call hooks for a call made outside the chain: ``after_call`` on every
        middleware when ``ctx.response`` answered it, ``on_error`` when ``ctx.error`` is set."""
        ctx.called = True
        self._unwind(ctx, list(self.middleware))

    def _attempt(self, ctx: CallContext, call: ProviderCall, entered: list[Middleware]) -> None:
        unwinding: list[Middleware] = []
        try:
            for middleware in self.middleware:
                middleware.before_call(ctx)
                entered.append(middleware)
                unwinding.append(middleware)
                if ctx.response is not None:
                    break
            if ctx.response is None:
                for wrapper in reversed(self._wrappers):
                    call = wrapper.wrap_call(ctx, call)
                ctx.response = self._timed(ctx, call)
        except SwitchyardError as exc:
            ctx.error = exc
        self._unwind(ctx, unwinding)

    @staticmethod
    def _unwind(ctx: CallContext, entered: list[Middleware]) -> None:
        # after_call bottom to top; an error there turns the rest (itself included) to on_error.
        try:
            while ctx.error is None and entered:
                entered[-1].after_call(ctx)
                entered.pop()
        except SwitchyardError as exc:
            ctx.error = exc
        while ctx.error is not None and entered:
            entered.pop().on_error(ctx)

    @staticmethod
    def _timed(ctx: CallContext, call: ProviderCall) -> AnyResponse:
        started = time.perf_counter()
        ctx.called = True
        try:
            return call(ctx)
        finally:
            ctx.latency_ms = round((time.perf_counter() - started) * 1000, 2)
