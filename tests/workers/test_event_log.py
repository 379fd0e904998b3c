"""The tenant event log on real Redis: what is kept, what is trimmed, and how a resume learns it."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from redis import Redis

from api.event_hub import EventHub
from api.event_stream import TenantEventReader, parse_resume_id
from schemas.errors import InvalidLastEventId
from schemas.settings import StreamingSettings
from workers.event import Event
from workers.event_log import record_event, retention_floor
from workers.keys import RedisKeys


@pytest.fixture
def keys(redis_url: str) -> Iterator[RedisKeys]:
    keys = RedisKeys(f"sytest{uuid.uuid4().hex[:8]}")
    yield keys
    redis = Redis.from_url(redis_url)
    redis.delete(*redis.keys(f"{keys.prefix}:*") or ["-"])
    redis.close()


def record(
    redis: Redis, keys: RedisKeys, settings: StreamingSettings, count: int, tenant: str = "t1"
) -> list[str]:
    return [
        record_event(redis, keys, settings, Event(tenant, "job.succeeded", {"n": n})) for n in range(count)
    ]


def lost_after(redis_url: str, key: str, settings: StreamingSettings, resume_id: str) -> bool:
    async def check() -> bool:
        hub = EventHub(redis_url, "unused")
        try:
            return await TenantEventReader(hub, key, settings).history_lost_after(resume_id)
        finally:
            await hub.redis.aclose()
            await hub.blocking.aclose()

    return asyncio.run(check())


def test_events_are_kept_in_order_with_their_json_and_a_lifetime(redis_url: str, keys: RedisKeys) -> None:
    redis, settings = Redis.from_url(redis_url), StreamingSettings.model_validate({})
    ids = record(redis, keys, settings, 3)

    entries: Any = redis.xrange(keys.tenant_events("t1"))
    assert [entry_id.decode() for entry_id, _ in entries] == ids
    body = json.loads(entries[0][1][b"event"])
    assert body["type"] == "job.succeeded" and body["data"] == {"n": 0} and body["id"].startswith("evt_")
    assert 0 < int(redis.ttl(keys.tenant_events("t1"))) <= settings.event_retention_s
    assert redis.xlen(keys.tenant_events("other")) == 0


def test_a_resume_behind_the_cap_trim_is_reported_lost(redis_url: str, keys: RedisKeys) -> None:
    redis = Redis.from_url(redis_url)
    settings = StreamingSettings.model_validate({"event_max_per_tenant": 10})
    ids = record(redis, keys, settings, 400)
    key = keys.tenant_events("t1")

    assert redis.xlen(key) < 400  # approximate trimming drops whole nodes
    assert lost_after(redis_url, key, settings, ids[0])
    assert not lost_after(redis_url, key, settings, ids[-1])
    assert not lost_after(redis_url, key, settings, "0")


def test_a_resume_older_than_the_window_is_reported_lost(redis_url: str, keys: RedisKeys) -> None:
    redis, settings = Redis.from_url(redis_url), StreamingSettings.model_validate({"event_retention_s": 60})
    record(redis, keys, settings, 1)
    key = keys.tenant_events("t1")
    before_window = f"{retention_floor(settings) - 1}-0"

    assert lost_after(redis_url, key, settings, before_window)
    # Well inside the window: the floor moves on while the check runs (milliseconds on a busy machine).
    inside_window = f"{retention_floor(settings) + 30_000}-0"
    assert not lost_after(redis_url, keys.tenant_events("nobody"), settings, inside_window)


@pytest.mark.parametrize("value", ["abc", "1-", "-1", "1-2-3", "1.5-0", "9" * 16 + "-0", " "])
def test_malformed_resume_ids_are_refused(value: str) -> None:
    with pytest.raises(InvalidLastEventId):
        parse_resume_id(value)


def test_resume_ids_that_are_stream_ids_or_zero_pass() -> None:
    assert parse_resume_id("1764536400123-0") == "1764536400123-0"
    assert parse_resume_id("0") == "0"
    assert parse_resume_id(None) is None and parse_resume_id("") is None
