"""Bulk publishing of a batch's jobs: the same messages Celery writes, in order, on real Redis."""

from __future__ import annotations

import json
import uuid
from typing import Any

from celery import Celery
from redis import Redis
from tests_support import queued_job_ids

from schemas.settings import Settings
from workers.bulk_publish import MessageTemplate
from workers.celery_app import create_celery
from workers.dispatch import Dispatcher, message_priority, priority_keys
from workers.keys import RedisKeys

PER_JOB = {"headers": ("id", "root_id"), "properties": ("correlation_id", "delivery_tag", "reply_to")}


def _comparable(raw: bytes | str) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(raw)
    for part, names in PER_JOB.items():
        for name in names:
            message[part].pop(name, None)
    message["headers"].pop("ignore_result")  # send_task leaves it to the worker's config
    return message


def send_task_message(celery: Celery, redis: Redis, queue: str, priority: int) -> bytes:
    """The message Celery's own ``send_task`` writes for job ``job_abc``, taken off the queue."""
    with celery.producer_or_acquire() as producer:
        celery.send_task(
            "switchyard.run_job", args=["job_abc"], queue=queue, priority=priority, producer=producer
        )
    written = redis.lpop(priority_keys(queue)[priority])
    assert isinstance(written, bytes)
    return written


def test_template_message_is_what_send_task_writes(settings: Settings) -> None:
    celery = create_celery(settings)
    redis = Redis.from_url(settings.redis_url)
    queue = f"tier.bulk{uuid.uuid4().hex[:6]}.batch"
    try:
        written = send_task_message(celery, redis, queue, priority=5)
        encoded = MessageTemplate(celery, "switchyard.run_job", queue).encode("job_abc", 5)
        assert _comparable(encoded) == _comparable(written)
        assert json.loads(encoded)["headers"]["id"] != json.loads(encoded)["properties"]["delivery_tag"]
    finally:
        redis.delete(*priority_keys(queue))


def test_publish_many_keeps_order_within_levels_and_counts_the_backlog(settings: Settings) -> None:
    celery = create_celery(settings)
    redis = Redis.from_url(settings.redis_url)
    keys = RedisKeys(settings.key_prefix)
    tier = f"bulk{uuid.uuid4().hex[:6]}"
    queue = f"tier.{tier}.batch"
    ids = [f"job_{index:02d}" for index in range(12)]
    try:
        Dispatcher(celery, redis, keys).publish_many(ids, tier, "batch", "tenant-x")
        levels = [message_priority("batch", backlog) for backlog in range(1, 13)]
        by_level = {
            level: [i for i, lv in zip(ids, levels, strict=True) if lv == level] for level in set(levels)
        }
        expected = [job for level in sorted(by_level) for job in by_level[level]]
        assert queued_job_ids(redis, queue) == expected
        assert int(redis.hget(keys.tenant_backlog(tier), "tenant-x") or 0) == 12
        messages = [json.loads(raw) for key in priority_keys(queue) for raw in redis.lrange(key, 0, -1)]
        assert len({m["headers"]["id"] for m in messages}) == 12  # one task id per message
    finally:
        redis.delete(*priority_keys(queue), keys.tenant_backlog(tier))


def test_publish_of_one_job_writes_what_send_task_writes(settings: Settings) -> None:
    celery = create_celery(settings)
    redis = Redis.from_url(settings.redis_url)
    keys = RedisKeys(settings.key_prefix)
    tier = f"one{uuid.uuid4().hex[:6]}"
    queue = f"tier.{tier}.live"
    try:
        expected = send_task_message(celery, redis, queue, priority=0)
        Dispatcher(celery, redis, keys).publish("job_abc", tier, "live", "tenant-x")  # first job: level 0
        written = redis.lpop(priority_keys(queue)[0])
        assert isinstance(written, bytes)
        assert _comparable(written) == _comparable(expected)
    finally:
        redis.delete(*priority_keys(queue), keys.tenant_backlog(tier))
