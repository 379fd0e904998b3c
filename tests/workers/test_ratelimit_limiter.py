"""The Lua limiter on real Redis: exact sliding windows, reserves, pauses, resync and AIMD."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis import Redis

from workers.keys import RedisKeys
from workers.ratelimit.limiter import AdaptivePolicy, BucketLimits, Limiter


@pytest.fixture(scope="module")
def limiter(redis_url: str) -> Iterator[Limiter]:
    redis = Redis.from_url(redis_url)
    yield Limiter(redis, RedisKeys(f"rl-test-{uuid.uuid4().hex[:8]}"), lease_s=30)
    redis.close()


def fresh_bucket() -> str:
    return f"emulator/model-{uuid.uuid4().hex[:8]}"


@dataclass
class Granted:
    at: float
    tokens: int


def in_window(grants: list[Granted], now: float, window: float) -> list[Granted]:
    return [g for g in grants if g.at > now - window]


# One step: advance the clock (ms), then acquire `tokens` with a class reserve, or settle an
# earlier grant at a share of its tokens.
steps = st.lists(
    st.tuples(
        st.integers(0, 4000),
        st.sampled_from(["acquire", "acquire", "acquire", "settle"]),
        st.integers(1, 60),
        st.sampled_from([0.0, 0.0, 0.2, 0.5]),
        st.floats(0, 1),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rpm=st.integers(1, 8),
    tpm=st.integers(60, 200),
    window_ms=st.integers(500, 5000),
    sequence=steps,
)
def test_grants_never_exceed_the_limits_in_any_window(
    limiter: Limiter, rpm: int, tpm: int, window_ms: int, sequence: list[tuple[int, str, int, float, float]]
) -> None:
    """Over any sequence of acquires and settles, every window holds at most the limits, and
    the limiter grants exactly what a reference model of the window would grant."""
    bucket, window = fresh_bucket(), window_ms / 1000
    limits = BucketLimits(window_s=window, rpm=rpm, tpm=tpm)
    now = 1_000.0
    grants: list[tuple[Granted, object]] = []
    for advance_ms, op, tokens, reserve, share in sequence:
        now = round(now + advance_ms / 1000, 3)
        if op == "settle" and grants:
            record, grant = grants[int(share * (len(grants) - 1))]
            actual = int(record.tokens * share)
            limiter.settle(grant, actual)  # type: ignore[arg-type]
            if record.at > now - window:  # the limiter only corrects amounts still counted
                record.tokens = actual
            continue
        live = in_window([g for g, _ in grants], now, window)
        used_requests, used_tokens = len(live), sum(g.tokens for g in live)
        allowed_requests = rpm - int(rpm * reserve)
        allowed_tokens = tpm - int(tpm * reserve)
        fits = used_requests + 1 <= allowed_requests and used_tokens + tokens <= allowed_tokens
        expected = fits or (used_requests == 0 and tokens <= tpm)
        decision = limiter.acquire(bucket, limits, tokens, reserve, now=now)
        assert decision.granted == expected, (now, used_requests, used_tokens, tokens, reserve, decision)
        if decision.granted:
            grants.append((Granted(now, tokens), decision.grant))
            live = in_window([g for g, _ in grants], now, window)
            assert len(live) <= rpm
            assert sum(g.tokens for g in live) <= tpm
        else:
            assert decision.wait_s > 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rpm=st.integers(1, 6),
    tpm=st.integers(40, 120),
    sizes=st.lists(st.integers(1, 40), min_size=1, max_size=30),
)
def test_a_refused_call_fits_after_the_wait_it_was_told(
    limiter: Limiter, rpm: int, tpm: int, sizes: list[int]
) -> None:
    bucket, limits = fresh_bucket(), BucketLimits(window_s=2.0, rpm=rpm, tpm=tpm)
    now = 500.0
    for tokens in sizes:
        decision = limiter.acquire(bucket, limits, tokens, now=now)
        if not decision.granted:
            now = round(now + decision.wait_s, 3)
            assert limiter.acquire(bucket, limits, tokens, now=now).granted
        now = round(now + 0.01, 3)


def test_batch_leaves_the_reserve_that_live_may_use(limiter: Limiter) -> None:
    bucket, limits = fresh_bucket(), BucketLimits(window_s=60, rpm=10)
    batch = [limiter.acquire(bucket, limits, 1, reserve=0.2, now=10.0).granted for _ in range(10)]
    assert batch == [True] * 8 + [False] * 2
    assert limiter.acquire(bucket, limits, 1, reserve=0.5, now=10.0).reason == "requests"
    assert [limiter.acquire(bucket, limits, 1, now=10.0).granted for _ in range(3)] == [True, True, False]


def test_concurrency_is_freed_by_settle_or_by_the_lease(limiter: Limiter) -> None:
    bucket, limits = fresh_bucket(), BucketLimits(window_s=60, concurrency=2)
    first = limiter.acquire(bucket, limits, 1, now=10.0)
    assert limiter.acquire(bucket, limits, 1, now=10.0).granted
    refused = limiter.acquire(bucket, limits, 1, now=10.0)
    assert (refused.granted, refused.reason) == (False, "concurrency")
    assert first.grant is not None
    limiter.settle(first.grant, None)
    assert limiter.acquire(bucket, limits, 1, now=10.0).granted
    # A worker that died holding a slot loses it when its lease (30 s) runs out.
    assert not limiter.acquire(bucket, limits, 1, now=39.0).granted
    assert limiter.acquire(bucket, limits, 1, now=40.5).granted


def test_settle_returns_unused_tokens(limiter: Limiter) -> None:
    bucket, limits = fresh_bucket(), BucketLimits(window_s=60, tpm=100)
    grant = limiter.acquire(bucket, limits, 90, now=10.0).grant
    assert grant is not None
    assert not limiter.acquire(bucket, limits, 30, now=10.0).granted
    limiter.settle(grant, 20)  # the provider reported 20 tokens used
    assert limiter.snapshot(bucket, limits, now=10.0).tokens_used == 20
    assert limiter.acquire(bucket, limits, 30, now=10.0).granted


def test_pause_stops_every_caller_until_it_ends(limiter: Limiter) -> None:
    bucket, limits = fresh_bucket(), BucketLimits(window_s=60, rpm=100)
    limiter.pause(bucket, 5, now=10.0)
    refused = limiter.acquire(bucket, limits, 1, now=12.0)
    assert (refused.reason, refused.wait_s) == ("paused", 3.0)
    limiter.pause(bucket, 1, now=12.0)  # a shorter pause does not cut the longer one
    assert not limiter.acquire(bucket, limits, 1, now=14.9).granted
    assert limiter.acquire(bucket, limits, 1, now=15.0).granted
    assert limiter.snapshot(bucket, limits, now=15.0).paused_s == 0


def test_resync_counts_what_the_provider_used_until_its_reset(limiter: Limiter) -> None:
    bucket, limits = fresh_bucket(), BucketLimits(window_s=60, rpm=10, tpm=1000)
    assert limiter.acquire(bucket, limits, 100, now=10.0).granted
    # Another client of the same account used the provider too: it has 2 requests left.
    assert limiter.resync(bucket, limits, "requests", remaining=2, reset_s=6, now=10.0) == 7
    assert limiter.resync(bucket, limits, "tokens", remaining=950, reset_s=6, now=10.0) == 0
    assert [limiter.acquire(bucket, limits, 1, now=10.0).granted for _ in range(3)] == [True, True, False]
    assert limiter.acquire(bucket, limits, 1, now=16.0).granted  # the provider's window reset


def test_aimd_halves_the_limits_and_recovers_slowly(limiter: Limiter) -> None:
    bucket, limits = fresh_bucket(), BucketLimits(window_s=10, rpm=10)
    assert limiter.penalize(bucket, limits, now=10.0) == 0.5
    # Within the cooldown a second 429 of the same burst does not halve again.
    assert limiter.penalize(bucket, limits, now=10.5) == pytest.approx(0.505)
    assert [limiter.acquire(bucket, limits, 1, now=10.5).granted for _ in range(6)] == [True] * 5 + [False]
    # +0.1 of the limit per window: two windows after the decrease, 0.505 + 0.2.
    assert limiter.snapshot(bucket, limits, now=30.5).factor == pytest.approx(0.705)
    assert limiter.snapshot(bucket, limits, now=100.0).factor == 1.0


def test_adaptive_off_leaves_limits_alone(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    fixed = Limiter(redis, RedisKeys("rl-fixed"), 30, AdaptivePolicy(enabled=False))
    assert fixed.penalize(fresh_bucket(), BucketLimits(window_s=10, rpm=10)) == 1.0


def test_a_call_larger_than_the_token_limit_is_refused_as_too_large(limiter: Limiter) -> None:
    decision = limiter.acquire(fresh_bucket(), BucketLimits(window_s=60, tpm=100), 101, now=1.0)
    assert decision.reason == "too_large"


def test_the_redis_clock_is_used_when_no_time_is_given(limiter: Limiter) -> None:
    bucket, limits = fresh_bucket(), BucketLimits(window_s=60, rpm=1)
    assert limiter.acquire(bucket, limits, 1).granted
    refused = limiter.acquire(bucket, limits, 1)
    assert refused.reason == "requests" and 59 < refused.wait_s <= 60


def test_commands_along_an_acquire_share_its_round_trip_and_return_their_replies(limiter: Limiter) -> None:
    bucket, limits = fresh_bucket(), BucketLimits(window_s=60, rpm=1)
    name = f"rl-test-along-{uuid.uuid4().hex[:8]}"
    limiter.redis.set(name, b"read along", ex=60)

    granted = limiter.acquire(bucket, limits, 0, now=10.0, along=lambda pipe: pipe.get(name))
    refused = limiter.acquire(bucket, limits, 0, now=10.0, along=lambda pipe: pipe.get(name))

    assert granted.granted and granted.along == [b"read along"]
    assert not refused.granted and refused.along == [b"read along"]  # the caller decides what a refusal means
    assert limiter.acquire(bucket, limits, 0, now=10.0).along == []
