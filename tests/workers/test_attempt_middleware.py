"""The middleware that decide whether an attempt calls at all, and the call's soft time limit:
the attempts cap, the backlog count, the tenant's running slot (real Redis and SQLite)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from chain_support import completion, make_ctx, make_job, recording_call, sqlite_runtime
from redis.client import Pipeline

from schemas.errors import MaxAttemptsExceeded, ProviderTimeout, TenantBusy
from workers.chain import CallContext, PolicyChain
from workers.middleware.backlog import TenantBacklog
from workers.middleware.max_attempts import MaxAttemptsGate
from workers.middleware.retry import RetryWithBackoff
from workers.middleware.soft_time_limit import SoftTimeLimit
from workers.middleware.tenant_slot import HeldSlot, TenantRunningSlot
from workers.providers.base import AnyResponse
from workers.ratelimit.limiter import BucketLimits
from workers.ratelimit.policy import tenant_running_bucket
from workers.runtime import Runtime


@pytest.fixture
def rt(tmp_path: Path, redis_url: str) -> Iterator[Runtime]:
    with sqlite_runtime(tmp_path, redis_url) as runtime:
        yield runtime


# MaxAttemptsGate


def test_the_gate_fails_a_job_past_its_attempts_with_no_call(rt: Runtime) -> None:
    limit = rt.settings.max_attempts
    past, last = (
        make_ctx(rt.settings, make_job(attempts=limit + 1)),
        make_ctx(rt.settings, make_job(attempts=limit)),
    )
    journal: list[str] = []

    PolicyChain([MaxAttemptsGate()]).run(past, recording_call(journal))
    PolicyChain([MaxAttemptsGate()]).run(last, recording_call(journal))

    assert isinstance(past.error, MaxAttemptsExceeded) and past.error.code == "max_attempts"
    assert f"all {limit} attempts" in past.error.message and not past.called
    assert last.error is None and journal == ["call"]  # the last attempt still runs


# SoftTimeLimit


def test_the_soft_time_limit_during_the_call_is_a_retryable_provider_timeout(rt: Runtime) -> None:
    def outran(ctx: CallContext) -> AnyResponse:
        raise SoftTimeLimitExceeded()

    ctx = make_ctx(rt.settings)
    PolicyChain([RetryWithBackoff(random.Random(1)), SoftTimeLimit()]).run(ctx, outran)

    assert isinstance(ctx.error, ProviderTimeout) and ctx.called
    assert ctx.retry_in is not None  # handed back through the chain like any timeout


def test_the_soft_time_limit_leaves_other_exceptions_alone(rt: Runtime) -> None:
    def broken(ctx: CallContext) -> AnyResponse:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        PolicyChain([SoftTimeLimit()]).run(make_ctx(rt.settings), broken)


# TenantBacklog


def backlog(rt: Runtime) -> int:
    return int(rt.redis.hget(rt.keys.tenant_backlog("small"), "ten_test") or 0)


def test_the_backlog_count_rides_on_the_first_round_trip_once(rt: Runtime) -> None:
    rt.redis.hset(rt.keys.tenant_backlog("small"), "ten_test", 3)
    ctx = make_ctx(rt.settings)
    middleware = TenantBacklog(rt.dispatcher)

    middleware.before_call(ctx)
    assert backlog(rt) == 3  # nothing sent yet
    along = ctx.take_riders()
    assert along is not None
    pipe: Pipeline = rt.redis.pipeline(transaction=False)
    along(pipe)
    pipe.execute()
    middleware.after_attempt(ctx, settled=True)

    assert backlog(rt) == 2


def test_the_backlog_count_goes_on_its_own_when_no_round_trip_took_it(rt: Runtime) -> None:
    rt.redis.hset(rt.keys.tenant_backlog("small"), "ten_test", 3)
    ctx = make_ctx(rt.settings)

    PolicyChain([TenantBacklog(rt.dispatcher)]).run(ctx, recording_call([]))

    assert backlog(rt) == 2


# TenantRunningSlot


def in_flight(rt: Runtime) -> int:
    return rt.limiter.snapshot(tenant_running_bucket("ten_test"), BucketLimits(60, concurrency=10)).in_flight


def test_the_slot_is_taken_with_the_riders_and_given_back_on_the_ending_round_trip(rt: Runtime) -> None:
    rt.redis.hset(rt.keys.tenant_backlog("small"), "ten_test", 1)
    chain = PolicyChain([TenantBacklog(rt.dispatcher), TenantRunningSlot(rt.limiter, rt.tenant_limits)])
    held_during_call: list[int] = []
    ends: list[bool] = []

    def call(ctx: CallContext) -> AnyResponse:
        held_during_call.append(in_flight(rt))
        return completion()

    def settle(ctx: CallContext) -> None:
        along = ctx.take_riders(ending=True)
        ends.append(along is not None)
        pipe = rt.redis.pipeline(transaction=False)
        if along is not None:
            along(pipe)
        pipe.execute()
        assert in_flight(rt) == 0  # freed by the announcement's round trip itself

    ctx = make_ctx(rt.settings)
    chain.run(ctx, call, settle)

    assert held_during_call == [1] and ends == [True] and backlog(rt) == 0
    release = ctx.state(HeldSlot).release
    assert release is not None and release.queued


def test_a_tenant_at_its_cap_is_handed_back_with_up_to_half_the_wait_again(rt: Runtime) -> None:
    limits = rt.tenant_limits.running("ten_test")
    for _ in range(limits.concurrency or 0):
        rt.limiter.acquire(tenant_running_bucket("ten_test"), limits, 0)
    ctx = make_ctx(rt.settings)

    PolicyChain([TenantRunningSlot(rt.limiter, rt.tenant_limits)]).run(ctx, recording_call([]))

    wait = rt.settings.rate_limits.tenant_retry_s
    assert isinstance(ctx.error, TenantBusy) and not ctx.called
    assert ctx.retry_in is not None and wait <= ctx.retry_in <= wait * 1.5
    assert ctx.state(HeldSlot).release is None


def test_the_slot_goes_back_on_its_own_when_the_attempt_ends_without_an_announcement(rt: Runtime) -> None:
    ctx = make_ctx(rt.settings)

    PolicyChain([TenantRunningSlot(rt.limiter, rt.tenant_limits)]).run(
        ctx,
        recording_call([]),
        lambda ctx: None,  # settled with no announcement (a retry)
    )

    release = ctx.state(HeldSlot).release
    assert release is not None and not release.queued and in_flight(rt) == 0


def test_the_slot_is_sent_again_when_settling_fails_after_queueing_it(rt: Runtime) -> None:
    def lost(ctx: CallContext) -> None:
        along = ctx.take_riders(ending=True)
        assert along is not None
        along(rt.redis.pipeline(transaction=False))  # queued on a round trip that never runs
        raise ConnectionError("lost while announcing")

    ctx = make_ctx(rt.settings)
    with pytest.raises(ConnectionError):
        PolicyChain([TenantRunningSlot(rt.limiter, rt.tenant_limits)]).run(ctx, recording_call([]), lost)

    assert in_flight(rt) == 0
