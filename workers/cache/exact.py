"""The exact cache: the finished result of a canonical request, per tenant and tier, in Redis.

The key is the SHA-256 of canonical JSON (sorted keys, no whitespace) of the tenant, the tier
and every request field that can change the output. Only ``user`` (an end-user id for the
provider's abuse tracking) and ``stream`` are left out. The tenant is part of the key and of
the Redis key name, so one tenant can never read another's entry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from redis import Redis
from redis.client import Pipeline

from workers.keys import RedisKeys

NOT_OUTPUT_SHAPING = frozenset({"user", "stream"})
SCAN_BATCH = 1000


def request_key(tenant_id: str, tier: str, request: Mapping[str, Any]) -> str:
    """The exact-cache key of a request: 64 hex characters."""
    shaping = {k: v for k, v in request.items() if k not in NOT_OUTPUT_SHAPING and v is not None}
    canonical = json.dumps(
        {"tenant": tenant_id, "tier": tier, "request": shaping},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def decode_entry(raw: bytes | None) -> dict[str, Any] | None:
    """An entry as Redis returned it, or None for no entry."""
    return json.loads(raw) if raw else None


class ExactCache:
    """Entries are JSON under ``<prefix>:cache:exact:<tenant>:<tier>:<key>``, each with a TTL."""

    def __init__(self, redis: Redis, keys: RedisKeys) -> None:
        self.redis = redis
        self.keys = keys

    def get(self, tenant_id: str, tier: str, key: str) -> dict[str, Any] | None:
        return decode_entry(self.redis.get(self.keys.exact_entry(tenant_id, tier, key)))  # type: ignore[arg-type]

    def queue_get(self, pipe: Pipeline, tenant_id: str, tier: str, key: str) -> None:
        """Queue :meth:`get`'s read on the caller's ``pipe``; :func:`decode_entry` its reply."""
        pipe.get(self.keys.exact_entry(tenant_id, tier, key))

    def get_many(self, tenant_id: str, tier: str, keys: list[str]) -> list[dict[str, Any] | None]:
        """The entries of many keys, with one MGET per ``SCAN_BATCH`` keys."""
        found: list[dict[str, Any] | None] = []
        for start in range(0, len(keys), SCAN_BATCH):
            names = [self.keys.exact_entry(tenant_id, tier, key) for key in keys[start : start + SCAN_BATCH]]
            found.extend(json.loads(raw) if raw else None for raw in self.redis.mget(names))  # type: ignore[union-attr]
        return found

    def put(self, tenant_id: str, tier: str, key: str, entry: Mapping[str, Any], ttl_s: int) -> None:
        self.redis.set(self.keys.exact_entry(tenant_id, tier, key), json.dumps(entry), ex=ttl_s)

    def invalidate(self, tenant_id: str, tier: str | None = None, key: str | None = None) -> int:
        """Delete the tenant's entries: all, one tier's, or one key's; the number deleted."""
        if key is not None and tier is not None:
            return int(self.redis.unlink(self.keys.exact_entry(tenant_id, tier, key)))
        return self._unlink_matching(self.keys.exact_pattern(tenant_id, tier))

    def usage(self, tenant_id: str) -> dict[str, dict[str, int]]:
        """Entries and bytes per tier of the tenant (a SCAN: for stats, not hot paths)."""
        found: dict[str, dict[str, int]] = {}
        for name in self.redis.scan_iter(self.keys.exact_pattern(tenant_id), count=SCAN_BATCH):
            tier = self.keys.tier_of_exact_entry(name)
            row = found.setdefault(tier, {"entries": 0, "bytes": 0})
            row["entries"] += 1
            row["bytes"] += int(self.redis.memory_usage(name) or 0)
        return found

    def _unlink_matching(self, pattern: str) -> int:
        deleted = 0
        batch: list[Any] = []
        for name in self.redis.scan_iter(pattern, count=SCAN_BATCH):
            batch.append(name)
            if len(batch) >= SCAN_BATCH:
                deleted += int(self.redis.unlink(*batch))
                batch.clear()
        if batch:
            deleted += int(self.redis.unlink(*batch))
        return deleted
