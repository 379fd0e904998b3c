"""kombu's Redis transport with one client per channel for its short commands.

For every command outside its consuming loop (the worker's ack and its unacked-index update
for each delivered message, a producer's LPUSH) kombu's Redis channel builds a new
``redis.Redis`` object, copying its table of about 170 response callbacks into a
case-insensitive dict: about 0.13 ms of CPU each, twice per job in a worker's main process,
for an object that only wraps the channel's connection pool. This channel keeps one such
client and hands it out instead; a redis-py client over a pool is safe to share between
threads, and each command still takes a pooled connection of its own. Everything else,
including the messages and keys on Redis, is kombu's transport unchanged.

Selected with ``broker_transport`` (workers/celery_app.py) for ``redis://`` broker URLs.
:data:`UNAVAILABLE` names the errors that mean Redis cannot serve now, and
:data:`PUBLISH_FAILURES` every error a publish may raise.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.exceptions import OperationalError
from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MasterDownError, ReadOnlyError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

TRANSPORT = "workers.broker:Transport"
# What redis-py and kombu raise when Redis cannot serve now: down, restarting, loading its
# data, unreachable, or a replica refusing writes during a failover. The API answers these
# with 503 and a Retry-After (api/errors.py), never 500.
UNAVAILABLE: tuple[type[Exception], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    ReadOnlyError,
    MasterDownError,
    OperationalError,
)
# Whatever a publish may raise from Redis or kombu; after a commit the reconciler publishes.
PUBLISH_FAILURES: tuple[type[Exception], ...] = (RedisError, OperationalError)


class Channel(kombu_redis.Channel):
    """A kombu Redis channel that reuses one client for commands outside the consuming loop."""

    _shared_client: Any = None

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        shared = self._shared_client
        if shared is None or shared.connection_pool is not self.pool:  # kombu replaces a lost pool
            shared = self._shared_client = self._create_client()
        yield shared


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with :class:`Channel`."""

    Channel = Channel
