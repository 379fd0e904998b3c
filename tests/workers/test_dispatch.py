"""Fair lanes: the broker priority of a job from its class and its tenant's backlog."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from tests_support import delete_tier_queues, make_test_settings, queued_job_ids

from workers.celery_app import create_celery
from workers.dispatch import Dispatcher, message_priority, priority_keys
from workers.keys import RedisKeys


@pytest.mark.parametrize(
    ("priority", "backlogs", "lanes"),
    [
        ("live", [1, 2, 3, 4, 5, 10_000], [0, 1, 2, 2, 3, 3]),
        ("batch", [1, 2, 3, 4, 5, 10_000], [4, 5, 6, 6, 7, 7]),
        ("precompute", [1, 2, 3, 10_000], [8, 9, 9, 9]),
    ],
)
def test_lanes_by_class_and_backlog(priority: str, backlogs: list[int], lanes: list[int]) -> None:
    assert [message_priority(priority, backlog) for backlog in backlogs] == lanes


def test_every_live_lane_comes_before_every_batch_lane_before_precompute() -> None:
    live = {message_priority("live", n) for n in range(1, 100)}
    batch = {message_priority("batch", n) for n in range(1, 100)}
    precompute = {message_priority("precompute", n) for n in range(1, 100)}
    assert max(live) < min(batch) and max(batch) < min(precompute)


def test_a_drifted_negative_backlog_counts_as_empty() -> None:
    assert message_priority("live", -3) == 0


def test_one_redis_list_per_priority_step() -> None:
    keys = priority_keys("tier.small.live")
    assert keys[0] == "tier.small.live" and len(keys) == 10 and len(set(keys)) == 10


@pytest.fixture
def dispatcher(tmp_path: Path, redis_url: str) -> Iterator[Dispatcher]:
    settings = make_test_settings(tmp_path, redis_url, tiers={"disp": {"models": ["emu-a"]}})
    redis = Redis.from_url(redis_url)
    yield Dispatcher(create_celery(settings), redis, RedisKeys(settings.key_prefix))
    delete_tier_queues(redis, ["disp"], settings.key_prefix)
    redis.close()


def test_deferred_jobs_are_published_once_when_due(dispatcher: Dispatcher) -> None:
    dispatcher.defer("job_soon", "disp", "live", "ten_a", 0.2)
    dispatcher.defer("job_later", "disp", "batch", "ten_a", 30)

    assert dispatcher.release_due() == 0
    time.sleep(0.25)
    assert dispatcher.release_due() == 1 and dispatcher.release_due() == 0

    assert queued_job_ids(dispatcher.redis, "tier.disp.live") == ["job_soon"]
    assert queued_job_ids(dispatcher.redis, "tier.disp.batch") == []
    assert dispatcher.redis.zcard(dispatcher.keys.deferred) == 1


def test_a_tenants_later_jobs_go_in_later_lanes(dispatcher: Dispatcher) -> None:
    for index in range(6):
        dispatcher.publish(f"job_a{index}", "disp", "batch", "ten_a")
    dispatcher.publish("job_b0", "disp", "batch", "ten_b")

    # Workers pop the lowest lane first: tenant b's only job overtakes most of tenant a's.
    assert queued_job_ids(dispatcher.redis, "tier.disp.batch") == [
        "job_a0",
        "job_b0",
        "job_a1",
        "job_a2",
        "job_a3",
        "job_a4",
        "job_a5",
    ]


@pytest.mark.parametrize("priority", ["live", "batch", "precompute"])
def test_the_publish_script_puts_each_job_at_its_level(dispatcher: Dispatcher, priority: str) -> None:
    # The script computes the level in Lua; it must agree with message_priority, and the
    # message must carry that level, since kombu restores an unacked message by it.
    for index in range(1, 41):
        dispatcher.publish(f"job_{index}", "disp", priority, "ten_a")

    placed: dict[str, tuple[int, int]] = {}
    for step, key in enumerate(priority_keys(f"tier.disp.{priority}")):
        for raw in dispatcher.redis.lrange(key, 0, -1):
            envelope = json.loads(raw)
            args, _kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
            placed[args[0]] = (step, envelope["properties"]["priority"])
    assert placed == {
        f"job_{n}": (message_priority(priority, n), message_priority(priority, n)) for n in range(1, 41)
    }
    assert int(dispatcher.redis.hget(dispatcher.keys.tenant_backlog("disp"), "ten_a") or 0) == 40
