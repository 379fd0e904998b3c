"""From Settings to the limiter: an in-flight slot outlives the longest task, not the job's lease."""

from __future__ import annotations

import uuid
from pathlib import Path

from redis import Redis
from tests_support import make_test_settings

from workers.keys import RedisKeys
from workers.ratelimit.limiter import BucketLimits
from workers.ratelimit.policy import build_limiter


def test_a_slot_is_held_through_the_longest_call_and_freed_after_a_dead_worker(
    tmp_path: Path, redis_url: str
) -> None:
    # The job's lease (20 s) is renewed by a heartbeat; the limiter's slots are not, so a slot
    # that expired with the lease would admit a second call while the first still runs.
    settings = make_test_settings(tmp_path, redis_url, lease_s=20, task_time_limit_s=150)
    redis = Redis.from_url(redis_url)
    limiter = build_limiter(settings, redis, RedisKeys(settings.key_prefix))
    bucket, limits = f"slots-{uuid.uuid4().hex[:8]}", BucketLimits(window_s=60, concurrency=1)
    try:
        assert limiter.acquire(bucket, limits, 1, now=10.0).granted
        assert not limiter.acquire(bucket, limits, 1, now=10.0 + 149).granted  # a call may run 150 s
        assert limiter.acquire(bucket, limits, 1, now=10.0 + 150 + 20 + 1).granted  # its worker died
    finally:
        for key in redis.scan_iter(f"{settings.key_prefix}*"):
            redis.delete(key)
        redis.close()
