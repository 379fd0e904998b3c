"""The limits report and its Prometheus export read the same Redis state."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from redis import Redis
from tests_support import delete_tier_queues, make_test_settings

from schemas.settings import Settings
from workers.celery_app import create_celery
from workers.dispatch import Dispatcher
from workers.keys import RedisKeys
from workers.ratelimit.limiter import Limiter
from workers.ratelimit.policy import build_limiter, model_limits
from workers.ratelimit.report import LimitsCollector, limits_report


@pytest.fixture
def parts(tmp_path: Path, redis_url: str) -> Iterator[tuple[Settings, Limiter, Dispatcher]]:
    settings = make_test_settings(tmp_path, redis_url)
    redis = Redis.from_url(redis_url)
    keys = RedisKeys(settings.key_prefix)
    yield settings, build_limiter(settings, redis, keys), Dispatcher(create_celery(settings), redis, keys)
    delete_tier_queues(redis, list(settings.tiers), settings.key_prefix)
    redis.close()


def test_report_and_gauges_show_use_pause_and_queue(parts: tuple[Settings, Limiter, Dispatcher]) -> None:
    settings, limiter, dispatcher = parts
    model = settings.models["emu-rl"]
    limits = model_limits(model, settings.rate_limits)
    for _ in range(3):
        limiter.acquire(model.bucket, limits, 100)
    limiter.pause(model.bucket, 30)
    limiter.pause(settings.models["emu-rl-backup"].bucket, 40)
    dispatcher.publish("job_x", "limited", "batch", "ten_x")

    report = limits_report(settings, limiter, dispatcher)
    registry = CollectorRegistry()
    registry.register(LimitsCollector(settings, limiter, dispatcher))

    row = next(m for m in report["models"] if m["model"] == "emu-rl")
    assert (row["requests_headroom"], row["tokens_headroom"], row["in_flight"]) == (7, 3700, 0)
    assert 29 < row["paused_s"] <= 30
    tier = next(t for t in report["tiers"] if t["tier"] == "limited")
    # Both models are paused: draining starts when the first pause ends, then 1 job at 2 x 10/60 s.
    assert tier["queued"]["batch"] == 1 and 29 + 2.9 < tier["total_drain_s"] <= 30 + 3.1
    labels = {"provider": "emulator", "model": "emu-rl"}
    assert registry.get_sample_value("switchyard_ratelimit_requests_headroom", labels) == 7
    paused = registry.get_sample_value("switchyard_ratelimit_paused_seconds", labels)
    assert paused == pytest.approx(30, abs=1)
    depth = registry.get_sample_value("switchyard_queue_depth", {"tier": "limited", "priority": "batch"})
    assert depth == 1
    # Unlimited models (emu-a) have no bucket, so their tiers have no drain estimate.
    assert next(t for t in report["tiers"] if t["tier"] == "small")["jobs_per_second"] is None
