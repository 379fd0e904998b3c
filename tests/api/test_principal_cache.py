"""The API process's key cache: an entry is served only under the auth epoch it was looked up
under, a bumped epoch (real Redis) drops every entry at the next check, and without Redis no
entry outlives one check period."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from redis import Redis

from api.keys import Principal
from api.principal_cache import EPOCH_CHECK_S, PrincipalCache, announce_auth_change
from workers.keys import RedisKeys

PRINCIPAL = Principal(tenant_id="ten_a", key_id="key_a", scopes=frozenset({"read"}))


@pytest.fixture
def keys(redis_url: str) -> Iterator[RedisKeys]:
    keys = RedisKeys(f"sytest{uuid.uuid4().hex[:8]}")
    yield keys
    Redis.from_url(redis_url).delete(keys.auth_epoch)


def checked(cache: PrincipalCache) -> PrincipalCache:
    cache.checked_at = float("-inf")
    assert cache.check_due() and not cache.check_due()  # one request of many reads the epoch
    cache.check_epoch()
    return cache


def test_a_bumped_epoch_drops_the_cached_keys_at_the_next_check(redis_url: str, keys: RedisKeys) -> None:
    redis = Redis.from_url(redis_url)
    cache = checked(PrincipalCache(redis, keys.auth_epoch))
    cache.put("h", PRINCIPAL, cache.epoch)
    assert checked(cache).get("h") == PRINCIPAL  # the epoch did not move

    announce_auth_change(redis, keys)

    assert cache.get("h") == PRINCIPAL  # not checked yet
    assert checked(cache).get("h") is None


def test_a_lookup_that_straddles_a_change_is_not_served(redis_url: str, keys: RedisKeys) -> None:
    redis = Redis.from_url(redis_url)
    cache = checked(PrincipalCache(redis, keys.auth_epoch))
    before_lookup = cache.epoch
    announce_auth_change(redis, keys)
    checked(cache)  # another request saw the change while this lookup ran

    cache.put("h", PRINCIPAL, before_lookup)

    assert cache.get("h") is None


def test_without_redis_no_entry_outlives_a_check(keys: RedisKeys) -> None:
    cache = checked(
        PrincipalCache(Redis.from_url("redis://127.0.0.1:1", socket_connect_timeout=0.2), keys.auth_epoch)
    )
    cache.put("h", PRINCIPAL, cache.epoch)
    assert cache.get("h") == PRINCIPAL and EPOCH_CHECK_S <= 1.0

    assert checked(cache).get("h") is None
    announce_auth_change(cache.redis, keys)  # logs, does not raise
