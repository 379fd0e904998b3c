"""Token streaming on the worker side: a streaming job's text deltas go to a short-lived Redis stream.

Each entry is ``{a: attempt, d: text}``. The API relays the stream (api/token_relay.py); a
client that connects late reads it from the start. A retry or a fallback model starts a new
attempt, whose entries tell the relay to start the text over. The stream expires after
``streaming.token_ttl_s``; the stored result is the record.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis

from schemas.settings import StreamingSettings
from workers.keys import RedisKeys


@dataclass
class TokenPublisher:
    """Appends one job attempt's deltas to the job's token stream, as they arrive."""

    redis: Redis
    key: str
    attempt: int
    ttl_s: int
    _sent: int = 0

    @classmethod
    def for_job(
        cls, redis: Redis, keys: RedisKeys, settings: StreamingSettings, job_id: str, attempt: int
    ) -> TokenPublisher:
        return cls(redis, keys.job_tokens(job_id), attempt, settings.token_ttl_s)

    def __call__(self, text: str) -> None:
        """Publish one delta; the first also sets the stream's lifetime."""
        fields = {"a": self.attempt, "d": text}
        if self._sent:
            self.redis.xadd(self.key, fields)  # type: ignore[arg-type]
        else:
            pipe = self.redis.pipeline(transaction=False)
            pipe.xadd(self.key, fields)  # type: ignore[arg-type]
            pipe.expire(self.key, self.ttl_s)
            pipe.execute()
        self._sent += 1
