"""Which requests miss the cache most: cheap counters for known-query suggestions.

Every exact-cache miss adds one to its request's score in the tenant's sorted set for the
current hour, and keeps the request body (once) so it can be registered as a known query.
Reading the last ``hours`` is a ZUNIONSTORE of at most that many small sets: no table scan.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from typing import Any

from redis import Redis
from redis.client import Pipeline

from workers.keys import RedisKeys

HOUR_S = 3600
KEEP_HOURS = 7 * 24


class MissCounter:
    """Hourly miss counts per tenant, kept a week."""

    def __init__(self, redis: Redis, keys: RedisKeys) -> None:
        self.redis = redis
        self.keys = keys

    def count(self, pipe: Pipeline, tenant_id: str, tier: str, key: str, request: Mapping[str, Any]) -> None:
        """Queue the counting of one miss on ``pipe``, to share the lookup's round trip."""
        member = f"{tier}:{key}"
        bucket = self.keys.cache_misses(tenant_id, int(time.time() // HOUR_S))
        requests = self.keys.cache_missed_requests(tenant_id)
        pipe.zincrby(bucket, 1, member)
        pipe.expire(bucket, KEEP_HOURS * HOUR_S)
        pipe.hsetnx(requests, member, json.dumps(request))
        pipe.expire(requests, KEEP_HOURS * HOUR_S)

    def top(self, tenant_id: str, hours: int = 24, limit: int = 20) -> list[dict[str, Any]]:
        """The most missed requests of the last ``hours``: tier, key, count and request."""
        now_bucket = int(time.time() // HOUR_S)
        buckets = [self.keys.cache_misses(tenant_id, now_bucket - i) for i in range(max(1, hours))]
        scratch = f"{self.keys.cache_misses(tenant_id, 0)}:scratch:{uuid.uuid4().hex}"
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.zunionstore(scratch, buckets)
            pipe.zrevrange(scratch, 0, limit - 1, withscores=True)
            pipe.delete(scratch)
            _, ranked, _ = pipe.execute()
        if not ranked:
            return []
        members = [member for member, _ in ranked]
        raw = self.redis.hmget(self.keys.cache_missed_requests(tenant_id), members)  # type: ignore[arg-type]
        found = []
        for (member, count), request in zip(ranked, raw, strict=True):
            tier, _, key = member.decode().partition(":")
            found.append(
                {
                    "tier": tier,
                    "key": key,
                    "misses": int(count),
                    "request": json.loads(request) if request else None,
                }
            )
        return found
