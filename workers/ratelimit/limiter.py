"""The limiter: Lua scripts over weighted sliding windows in Redis, one bucket per name.

A bucket holds a requests window, a tokens window and the calls in flight. Every worker
process on every machine runs the same scripts on the same keys, so the limit is global, and
each script runs atomically, so two workers can never both take the last unit. The windows
are exact: in any span of ``window_s`` seconds the granted amounts never exceed the limit in
force. See docs/rate-limits.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from redis import Redis
from redis.client import Pipeline
from redis.commands.core import Script

from workers.keys import RedisKeys

SCRIPT_DIR = Path(__file__).resolve().parent
INFLIGHT = 5  # the in-flight ZSET among a bucket's keys (RedisKeys.limit_bucket, common.lua)


@cache
def _source(name: str) -> str:
    common = (SCRIPT_DIR / "common.lua").read_text()
    return common + "\n" + (SCRIPT_DIR / f"{name}.lua").read_text()


@dataclass(frozen=True)
class BucketLimits:
    """What a bucket allows per window; None means no such limit."""

    window_s: float
    rpm: int | None = None
    tpm: int | None = None
    concurrency: int | None = None

    @property
    def limited(self) -> bool:
        return bool(self.rpm or self.tpm or self.concurrency)


@dataclass(frozen=True)
class AdaptivePolicy:
    """AIMD on bare 429s: multiply the limits in force by ``decrease``, recover linearly."""

    enabled: bool = True
    decrease: float = 0.5
    min_factor: float = 0.1
    recovery_per_window: float = 0.1
    cooldown_s: float = 1.0


@dataclass(frozen=True)
class Grant:
    """Capacity taken for one call; settle it when the call ends."""

    bucket: str
    grant_id: str
    tokens: int


@dataclass(frozen=True)
class Decision:
    """A granted call, or the reason and the seconds to wait before asking again."""

    grant: Grant | None
    wait_s: float
    reason: str
    remaining_requests: int | None
    remaining_tokens: int | None
    along: list[Any] = field(default_factory=list)  # the replies of the caller's ``along`` commands

    @property
    def granted(self) -> bool:
        return self.grant is not None


@dataclass(frozen=True)
class BucketState:
    """A bucket's use right now, for ``GET /v1/limits`` and metrics."""

    requests_used: int
    tokens_used: int
    in_flight: int
    paused_s: float
    factor: float


class Limiter:
    """Acquire, settle and signal on Redis buckets named by the caller."""

    def __init__(
        self,
        redis: Redis,
        keys: RedisKeys,
        lease_s: float,
        adaptive: AdaptivePolicy | None = None,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.lease_s = lease_s
        self.adaptive = adaptive or AdaptivePolicy()
        self._scripts: dict[str, Script] = {
            name: redis.register_script(_source(name)) for name in ("acquire", "settle", "signal", "snapshot")
        }

    def acquire(
        self,
        bucket: str,
        limits: BucketLimits,
        tokens: int,
        reserve: float = 0.0,
        now: float | None = None,
        along: Callable[[Pipeline], object] | None = None,
    ) -> Decision:
        """Take one request and ``tokens`` if they fit while leaving ``reserve`` of each limit.

        ``along`` may queue the caller's own commands on a pipeline: they go in the same round
        trip, before the script, and their replies come back in ``Decision.along``.
        """
        grant_id = uuid.uuid4().hex
        *along_replies, (granted, wait_ms, reason, left_requests, left_tokens) = self._run_along(
            along,
            "acquire",
            bucket,
            now,
            limits.window_s,
            limits.rpm or 0,
            limits.tpm or 0,
            limits.concurrency or 0,
            tokens,
            reserve,
            grant_id,
            self.lease_s,
            self.adaptive.recovery_per_window,
        )
        return Decision(
            grant=Grant(bucket, grant_id, tokens) if granted else None,
            wait_s=int(wait_ms) / 1000,
            reason=reason.decode() if isinstance(reason, bytes) else str(reason),
            remaining_requests=None if int(left_requests) < 0 else int(left_requests),
            remaining_tokens=None if int(left_tokens) < 0 else int(left_tokens),
            along=along_replies,
        )

    def settle(self, grant: Grant, actual_tokens: int | None, pipe: Pipeline | None = None) -> None:
        """Free the call's in-flight slot; correct its tokens to ``actual_tokens`` if known.

        With ``pipe``, the command is only queued there, to run in the caller's round trip.
        """
        keys = self.keys.limit_bucket(grant.bucket)
        if actual_tokens is None:  # only the slot to free: settle.lua would run this one ZREM
            (pipe if pipe is not None else self.redis).zrem(keys[INFLIGHT], grant.grant_id)
            return
        args: list[str | int] = [grant.grant_id, max(0, actual_tokens)]
        if pipe is None:
            self._scripts["settle"](keys=keys, args=args)
        else:
            _queue_script(pipe, "settle", keys, args)

    def pause(self, bucket: str, seconds: float, now: float | None = None) -> float:
        """Stop every worker from calling this bucket for ``seconds`` (a provider's retry-after)."""
        return float(self._signal(bucket, now, "pause", seconds))

    def resync(
        self,
        bucket: str,
        limits: BucketLimits,
        kind: str,
        remaining: int,
        reset_s: float,
        now: float | None = None,
    ) -> int:
        """Count as used what the provider says is gone and we did not know; the amount added."""
        limit = limits.rpm if kind == "requests" else limits.tpm
        if not limit:
            return 0
        added = self._signal(
            bucket,
            now,
            "resync",
            kind,
            limit,
            remaining,
            reset_s,
            limits.window_s,
            f"sync:{uuid.uuid4().hex}",
        )
        return int(added)

    def penalize(self, bucket: str, limits: BucketLimits, now: float | None = None) -> float:
        """AIMD decrease after a 429 that said nothing; the share of the limits now in force."""
        policy = self.adaptive
        if not policy.enabled:
            return 1.0
        return float(
            self._signal(
                bucket,
                now,
                "penalize",
                limits.window_s,
                policy.decrease,
                policy.min_factor,
                policy.cooldown_s,
                policy.recovery_per_window,
            )
        )

    def snapshot(self, bucket: str, limits: BucketLimits, now: float | None = None) -> BucketState:
        """The bucket's use in the current window."""
        requests, tokens, in_flight, paused, factor = self._run(
            "snapshot", bucket, now, limits.window_s, self.adaptive.recovery_per_window
        )
        return BucketState(int(requests), int(tokens), int(in_flight), float(paused), float(factor))

    def _signal(self, bucket: str, now: float | None, *args: str | float) -> Any:
        return self._run("signal", bucket, now, *args)

    def _run(self, script: str, bucket: str, now: float | None, *args: str | float) -> Any:
        return self._run_along(None, script, bucket, now, *args)[-1]

    def _run_along(
        self,
        along: Callable[[Pipeline], object] | None,
        script: str,
        bucket: str,
        now: float | None,
        *args: str | float,
    ) -> list[Any]:
        """The replies of ``along``'s commands, then the script's."""
        keys = self.keys.limit_bucket(bucket)
        argv = ["" if now is None else repr(now), *args]
        if along is None:
            return [self._scripts[script](keys=keys, args=argv)]
        with self.redis.pipeline(transaction=False) as pipe:
            along(pipe)
            _queue_script(pipe, script, keys, argv)
            return list(pipe.execute())


def _queue_script(pipe: Pipeline, script: str, keys: list[str], args: list[Any]) -> None:
    # EVAL with the source, not EVALSHA: a pipeline cannot retry one NOSCRIPT reply, and redis-py
    # would otherwise check every script with an extra SCRIPT EXISTS round trip. Redis keeps the
    # compiled script by its hash, so sending the source again costs only the bytes.
    pipe.eval(_source(script), len(keys), *keys, *args)
