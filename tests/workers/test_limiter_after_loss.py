"""The limiter after Redis lost its keys: it admits at most one extra limit, in the window of the
loss only, never stops a call, and settling a grant the loss took frees nothing it no longer
counts (docs/redis-loss.md). A loss is played by deleting the bucket's keys."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from redis import Redis

from workers.keys import RedisKeys
from workers.ratelimit.limiter import BucketLimits, Grant, Limiter


@pytest.fixture
def limiter(redis_url: str) -> Iterator[Limiter]:
    redis = Redis.from_url(redis_url)
    keys = RedisKeys(f"rl-loss-{uuid.uuid4().hex[:8]}")
    yield Limiter(redis, keys, lease_s=30)
    redis.delete(*redis.keys(f"{keys.prefix}:*"))
    redis.close()


def lose(limiter: Limiter, bucket: str) -> None:
    limiter.redis.delete(*limiter.keys.limit_bucket(bucket))


def granted(limiter: Limiter, bucket: str, limits: BucketLimits, now: float, tokens: int = 1) -> Grant | None:
    return limiter.acquire(bucket, limits, tokens, now=now).grant


def test_after_a_loss_the_limit_holds_again_from_the_next_window(limiter: Limiter) -> None:
    bucket, limits = "emulator/after-loss", BucketLimits(window_s=60, rpm=10)
    assert all(granted(limiter, bucket, limits, 100.0) for _ in range(10))
    lose(limiter, bucket)

    # The provider may see 20 calls in [100, 160): the ten before the loss, ten after it...
    after = [granted(limiter, bucket, limits, 101.0) for _ in range(11)]
    assert sum(g is not None for g in after) == 10
    # ...and never more: the window after the loss is exact again.
    assert granted(limiter, bucket, limits, 159.0) is None
    assert all(granted(limiter, bucket, limits, 161.5) for _ in range(10))
    assert granted(limiter, bucket, limits, 161.5) is None


def test_a_paused_bucket_that_lost_its_pause_admits_calls_again(limiter: Limiter) -> None:
    bucket, limits = "emulator/paused", BucketLimits(window_s=60, rpm=10)
    limiter.pause(bucket, 300, now=100.0)
    assert granted(limiter, bucket, limits, 101.0) is None
    lose(limiter, bucket)

    assert granted(limiter, bucket, limits, 102.0) is not None  # a loss never stops calls


def test_settling_slots_the_loss_took_frees_none_of_the_slots_counted_since(limiter: Limiter) -> None:
    bucket, limits = "emulator/in-flight", BucketLimits(window_s=60, concurrency=2)
    lost = [granted(limiter, bucket, limits, 10.0) for _ in range(2)]
    lose(limiter, bucket)
    held = [granted(limiter, bucket, limits, 11.0) for _ in range(2)]
    assert granted(limiter, bucket, limits, 11.0) is None

    for grant in lost:  # the calls in flight at the loss end
        assert grant is not None
        limiter.settle(grant, None)

    assert granted(limiter, bucket, limits, 12.0) is None  # still two in flight, still the cap
    assert held[0] is not None
    limiter.settle(held[0], None)
    assert granted(limiter, bucket, limits, 12.0) is not None


def test_a_lost_grant_settled_with_its_real_tokens_leaves_the_new_window_as_it_is(limiter: Limiter) -> None:
    bucket, limits = "emulator/tokens", BucketLimits(window_s=60, tpm=100)
    lost = granted(limiter, bucket, limits, 10.0, tokens=50)
    lose(limiter, bucket)
    assert granted(limiter, bucket, limits, 11.0, tokens=60) is not None
    assert lost is not None

    limiter.settle(lost, 0)  # it used nothing: a correction the window no longer counts

    assert granted(limiter, bucket, limits, 12.0, tokens=50) is None  # 60 + 50 > 100
    assert granted(limiter, bucket, limits, 12.0, tokens=40) is not None
