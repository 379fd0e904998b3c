"""The policy chain itself: hook order, errors, the call's wrapping and timing, the attempt's end,
skipping, recording a call made elsewhere, per-middleware state and riders. No network."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from chain_support import Recorder, completion, make_ctx, recording_call
from tests_support import make_test_settings

from schemas.errors import ProviderBadRequest, ProviderUnavailable
from schemas.settings import Settings
from workers.chain import CallContext, Middleware, PolicyChain, ProviderCall, SkipAttempt
from workers.providers.base import AnyResponse


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Test settings; nothing here touches Redis or a database."""
    return make_test_settings(tmp_path, "redis://127.0.0.1:6379/9")


def test_chain_runs_before_in_order_and_after_in_reverse(settings: Settings) -> None:
    journal: list[str] = []
    chain = PolicyChain([Recorder(name, journal) for name in "abc"])
    ctx = make_ctx(settings)

    chain.run(ctx, recording_call(journal))

    assert journal == [
        *("a.before", "b.before", "c.before", "call", "c.after", "b.after", "a.after"),
        *("c.after_attempt(True)", "b.after_attempt(True)", "a.after_attempt(True)"),
    ]
    assert ctx.response is not None and ctx.error is None and ctx.called


class Slow(Middleware):
    """Takes its time before the call, which must not count as the call's latency."""

    def before_call(self, ctx: CallContext) -> None:
        time.sleep(0.2)


def test_latency_is_the_calls_own_time_not_the_policies(settings: Settings) -> None:
    def call(ctx: CallContext) -> AnyResponse:
        time.sleep(0.03)
        return completion()

    ctx = make_ctx(settings)
    PolicyChain([Slow()]).run(ctx, call)

    assert 30 <= ctx.latency_ms < 200


def test_chain_runs_on_error_in_reverse_when_call_fails(settings: Settings) -> None:
    journal: list[str] = []
    chain = PolicyChain([Recorder(name, journal) for name in "abc"])
    ctx = make_ctx(settings)
    error = ProviderUnavailable("down")

    chain.run(ctx, recording_call(journal, error))

    assert journal[:7] == [
        "a.before",
        "b.before",
        "c.before",
        "call",
        "c.on_error",
        "b.on_error",
        "a.on_error",
    ]
    assert ctx.error is error
    assert ctx.response is None


def test_chain_runs_on_error_only_on_entered_middleware(settings: Settings) -> None:
    journal: list[str] = []
    failing = Recorder("b", journal, raise_before=ProviderBadRequest("no"))
    chain = PolicyChain([Recorder("a", journal), failing, Recorder("c", journal)])
    ctx = make_ctx(settings)

    chain.run(ctx, recording_call(journal))

    # b raised in before_call, so it never entered; c never ran; the call never happened.
    assert journal == ["a.before", "b.before", "a.on_error", "a.after_attempt(True)"]
    assert isinstance(ctx.error, ProviderBadRequest) and not ctx.called


def test_an_error_in_after_call_turns_the_rest_to_on_error(settings: Settings) -> None:
    journal: list[str] = []
    refusing = Recorder("b", journal, raise_after=ProviderUnavailable("refused"))
    chain = PolicyChain([Recorder("a", journal), refusing, Recorder("c", journal)])
    ctx = make_ctx(settings)

    chain.run(ctx, recording_call(journal))

    assert journal[:7] == ["a.before", "b.before", "c.before", "call", "c.after", "b.after", "b.on_error"]
    assert journal[7] == "a.on_error"
    assert isinstance(ctx.error, ProviderUnavailable)


def test_chain_skips_call_when_before_call_sets_response(settings: Settings) -> None:
    journal: list[str] = []
    cached = completion(prompt_tokens=1)
    chain = PolicyChain(
        [Recorder("a", journal), Recorder("b", journal, answer=cached), Recorder("c", journal)]
    )
    ctx = make_ctx(settings)

    chain.run(ctx, recording_call(journal))

    assert journal == [
        "a.before",
        "b.before",
        "b.after",
        "a.after",
        "b.after_attempt(True)",
        "a.after_attempt(True)",
    ]
    assert ctx.response is cached and not ctx.called


def test_chain_lets_unexpected_exceptions_propagate(settings: Settings) -> None:
    journal: list[str] = []
    chain = PolicyChain([Recorder("a", journal)])

    def broken(ctx: CallContext) -> AnyResponse:
        raise KeyError("a bug, not a provider error")

    with pytest.raises(KeyError):
        chain.run(make_ctx(settings), broken)
    assert journal == ["a.before", "a.after_attempt(False)"]  # the attempt still ends for it


def test_settle_runs_after_the_hooks_and_before_after_attempt(settings: Settings) -> None:
    journal: list[str] = []
    chain = PolicyChain([Recorder("a", journal)])

    chain.run(make_ctx(settings), recording_call(journal), lambda ctx: journal.append("settle"))

    assert journal == ["a.before", "call", "a.after", "settle", "a.after_attempt(True)"]


def test_after_attempt_says_when_settling_failed(settings: Settings) -> None:
    journal: list[str] = []
    chain = PolicyChain([Recorder("a", journal)])

    def settle(ctx: CallContext) -> None:
        raise ConnectionError("the database went away")

    with pytest.raises(ConnectionError):
        chain.run(make_ctx(settings), recording_call(journal), settle)
    assert journal[-1] == "a.after_attempt(False)"


def test_skip_attempt_ends_with_no_call_no_settle_and_no_error_hooks(settings: Settings) -> None:
    journal: list[str] = []
    skipping = Recorder("b", journal, raise_before=SkipAttempt())
    chain = PolicyChain([Recorder("a", journal), skipping, Recorder("c", journal)])
    ctx = make_ctx(settings)

    chain.run(ctx, recording_call(journal), lambda ctx: journal.append("settle"))

    assert journal == ["a.before", "b.before", "a.after_attempt(True)"]
    assert ctx.error is None and ctx.response is None and not ctx.called


class Wrapping(Middleware):
    """Wraps the call, journaling around it."""

    def __init__(self, name: str, journal: list[str]) -> None:
        self.name, self.journal = name, journal

    def wrap_call(self, ctx: CallContext, call: ProviderCall) -> ProviderCall:
        def wrapped(ctx: CallContext) -> AnyResponse:
            self.journal.append(f"{self.name}.enter")
            try:
                return call(ctx)
            finally:
                self.journal.append(f"{self.name}.leave")

        return wrapped


def test_wrappers_nest_with_the_first_middleware_outermost(settings: Settings) -> None:
    journal: list[str] = []
    chain = PolicyChain([Wrapping("a", journal), Recorder("r", journal), Wrapping("b", journal)])

    chain.run(make_ctx(settings), recording_call(journal))

    assert journal[:6] == ["r.before", "a.enter", "b.enter", "call", "b.leave", "a.leave"]


def test_record_runs_after_call_on_every_middleware_for_an_outside_answer(settings: Settings) -> None:
    journal: list[str] = []
    chain = PolicyChain([Recorder(name, journal) for name in "abc"])
    ctx = make_ctx(settings)
    ctx.response = completion()

    chain.record(ctx)

    assert journal == ["c.after", "b.after", "a.after"] and ctx.called


def test_record_runs_on_error_on_every_middleware_for_an_outside_failure(settings: Settings) -> None:
    journal: list[str] = []
    chain = PolicyChain([Recorder(name, journal) for name in "ab"])
    ctx = make_ctx(settings)
    ctx.error = ProviderBadRequest("refused")

    chain.record(ctx)

    assert journal == ["b.on_error", "a.on_error"]


@dataclass
class Counter:
    """A middleware's own state."""

    seen: int = 0


def test_each_attempt_has_its_own_typed_state_per_class(settings: Settings) -> None:
    first, second = make_ctx(settings), make_ctx(settings)

    first.state(Counter).seen += 1
    first.state(Counter).seen += 1

    assert first.state(Counter).seen == 2 and second.state(Counter).seen == 0


def test_riders_go_once_and_end_riders_only_with_the_ending_round_trip(settings: Settings) -> None:
    ctx = make_ctx(settings)
    queued: list[str] = []
    ctx.riders.append(lambda pipe: queued.append("early"))
    ctx.end_riders.append(lambda pipe: queued.append("at end"))
    pipe: Any = object()

    first = ctx.take_riders()
    assert first is not None
    first(pipe)
    assert queued == ["early"] and ctx.take_riders() is None  # taken: not sent twice
    ending = ctx.take_riders(ending=True)
    assert ending is not None
    ending(pipe)
    assert queued == ["early", "at end"] and ctx.take_riders(ending=True) is None
