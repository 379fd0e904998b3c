"""The API process's cache of authenticated keys, and how a change reaches every process.

Looking a key up costs 1.4 ms (SQLite) to 2.5 ms (PostgreSQL), so a key is kept for up to
30 s. A change that may refuse keys (revocation, rotation, a tenant disabled or enabled) bumps
one Redis counter, the auth epoch, after its commit. Every process reads the epoch at most
every ``EPOCH_CHECK_S`` (0.25 s) and trusts only entries looked up under the epoch it read
last: a change reaches every process within about a quarter of a second, for four Redis reads
a second per process however many keys it serves (docs/spend.md, "Admin API and audit log").
When Redis cannot be read the epoch is unknown, and no entry outlives one check period.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import structlog
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.keys import Principal
from workers.db import session_scope
from workers.keys import RedisKeys

log = structlog.get_logger("switchyard.api")
PRINCIPAL_CACHE_S = 30.0  # the longest a key is trusted without a lookup, epoch unchanged
EPOCH_CHECK_S = 0.25  # how often a process reads the auth epoch
# A key's ``last_used_at`` is written at most this often per key and process, not per request.
LAST_USED_EVERY_S = 60.0


@dataclass
class PrincipalCache:
    """Recently seen keys of one process, each with the auth epoch it was looked up under.

    ``touched`` holds when each key's ``last_used_at`` was last written by this process.
    """

    redis: Redis
    epoch_key: str
    entries: dict[str, tuple[float, object, Principal]] = field(default_factory=dict)
    touched: dict[str, float] = field(default_factory=dict)
    epoch: object = None  # the counter's value at the last check (None: never bumped)
    checked_at: float = float("-inf")

    def get(self, key_hash: str) -> Principal | None:
        """The cached principal, if looked up under the current epoch and not too long ago."""
        entry = self.entries.get(key_hash)
        if entry is None or entry[0] < time.monotonic() or entry[1] != self.epoch:
            return None
        return entry[2]

    def put(self, key_hash: str, principal: Principal, epoch: object) -> None:
        """Keep a principal looked up while ``epoch`` (read before the lookup) was current."""
        if len(self.entries) > 10_000:
            self.entries.clear()
        self.entries[key_hash] = (time.monotonic() + PRINCIPAL_CACHE_S, epoch, principal)

    def check_due(self) -> bool:
        """Whether to read the epoch now; claims the check, so one request of many does it."""
        now = time.monotonic()
        if now - self.checked_at < EPOCH_CHECK_S:
            return False
        self.checked_at = now
        return True

    def check_epoch(self) -> None:
        """Read the epoch (blocking: call it off the event loop)."""
        try:
            epoch: object = self.redis.get(self.epoch_key)
        except (RedisError, OSError):
            epoch = object()  # unknown: equal to no entry's, so each is looked up again
        if epoch != self.epoch:
            self.entries.clear()
        self.epoch = epoch

    def due_for_touch(self, key_id: str) -> bool:
        """Whether to write the key's ``last_used_at`` now (then not again for a while)."""
        now = time.monotonic()
        last = self.touched.get(key_id)
        if last is not None and now - last < LAST_USED_EVERY_S:
            return False
        if len(self.touched) > 10_000:
            self.touched.clear()
        self.touched[key_id] = now
        return True


def announce_auth_change(redis: Redis, keys: RedisKeys) -> None:
    """Bump the auth epoch, after a committed change that may refuse keys. Without Redis the
    change still holds: processes that cannot read the epoch look every key up again anyway,
    and the others within ``PRINCIPAL_CACHE_S``."""
    try:
        redis.incr(keys.auth_epoch)
    except (RedisError, OSError) as exc:
        log.warning("auth_epoch_not_bumped", error_type=type(exc).__name__)


@contextmanager
def auth_change(engine: Engine, redis: Redis, keys: RedisKeys) -> Iterator[Session]:
    """A session for a change that may refuse keys: committed, then announced to every process."""
    with session_scope(engine) as session:
        yield session
    announce_auth_change(redis, keys)
