"""Verify a Switchyard webhook on the receiving side: signature, age and duplicates.

Usage (see examples/webhook_receiver.py for a FastAPI app)::

    receiver = WebhookReceiver(["whsec_..."], RedisDedupe(redis))   # or MemoryDedupe()
    try:
        delivery = receiver.receive(body_bytes, request_headers)
    except InvalidWebhook as exc:
        return 400                            # exc.reason says why; do not process it
    if delivery.duplicate:
        return 200                            # seen before: acknowledge, do nothing
    handle(delivery.event)                    # {"type": ..., "timestamp": ..., "data": {...}}
    # if handling fails: receiver.forget(delivery.webhook_id), answer 500, and the retry is processed

The signature check is the ``standardwebhooks`` package's (HMAC-SHA256 over
``id.timestamp.body``, any of the space-separated ``v1,`` signatures may match). The header's
shape and the timestamp's freshness (within 5 minutes of now) are checked here first, so every
reason a delivery is refused is this module's own and does not change with the library's
release. Give every secret you accept: during a rotation the old and the new one.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

DEDUPE_TTL_S = 7 * 86_400  # longer than the whole retry schedule (about 38 h) and a redelivery
TIMESTAMP_TOLERANCE_S = 5 * 60  # the Standard Webhooks replay window, either side of now


class InvalidWebhook(Exception):
    """The delivery is not authentic or not fresh; ``reason`` says which check failed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DedupeStore(Protocol):
    """Remembers webhook ids; ``first_time`` marks and answers atomically."""

    def first_time(self, webhook_id: str) -> bool: ...

    def forget(self, webhook_id: str) -> None: ...


class MemoryDedupe:
    """Ids seen by this process, for one process or tests; bounded, oldest dropped first."""

    def __init__(self, ttl_s: float = DEDUPE_TTL_S, max_ids: int = 100_000) -> None:
        self.ttl_s, self.max_ids = ttl_s, max_ids
        self.seen: OrderedDict[str, float] = OrderedDict()

    def first_time(self, webhook_id: str) -> bool:
        now = time.monotonic()
        expires = self.seen.get(webhook_id)
        if expires is not None and expires > now:
            return False
        self.seen[webhook_id] = now + self.ttl_s
        self.seen.move_to_end(webhook_id)
        while len(self.seen) > self.max_ids:
            self.seen.popitem(last=False)
        return True

    def forget(self, webhook_id: str) -> None:
        self.seen.pop(webhook_id, None)


class RedisDedupe:
    """Ids seen by every receiver process sharing a Redis: ``SET NX EX``."""

    def __init__(self, redis: Any, prefix: str = "webhooks:seen", ttl_s: int = DEDUPE_TTL_S) -> None:
        self.redis, self.prefix, self.ttl_s = redis, prefix, ttl_s

    def first_time(self, webhook_id: str) -> bool:
        return bool(self.redis.set(f"{self.prefix}:{webhook_id}", 1, nx=True, ex=self.ttl_s))

    def forget(self, webhook_id: str) -> None:
        self.redis.delete(f"{self.prefix}:{webhook_id}")


@dataclass(frozen=True)
class Delivery:
    """A verified delivery: its id, the event, and whether this id was seen before."""

    webhook_id: str
    event: dict[str, Any]
    duplicate: bool


def check_signature_header(header: str) -> None:
    """Refuse a ``webhook-signature`` header that is not space-separated ``vN,<base64>`` entries.

    Checked here, not left to the library: how ``standardwebhooks`` reacts to a malformed entry
    changed between releases (1.3.0 no longer raises ``ValueError``), and a receiver's answer must
    not depend on which one is installed.
    """
    for entry in header.split():
        version, comma, signature = entry.partition(",")
        if not (comma and version[:1] == "v" and version[1:].isdigit() and signature):
            raise InvalidWebhook("malformed webhook-signature header: each entry is v1,<base64>")
        try:
            base64.b64decode(signature, validate=True)
        except binascii.Error as exc:
            raise InvalidWebhook("malformed webhook-signature header: the signature is not base64") from exc


def check_timestamp(header: str, now: float | None = None) -> None:
    """Refuse a ``webhook-timestamp`` that is not whole seconds within the replay window of now."""
    if not header.isdigit():
        raise InvalidWebhook("malformed webhook-timestamp header: give whole Unix seconds")
    age = (time.time() if now is None else now) - int(header)
    if age > TIMESTAMP_TOLERANCE_S:
        raise InvalidWebhook("webhook-timestamp too old: more than 5 minutes ago (a replay?)")
    if age < -TIMESTAMP_TOLERANCE_S:
        raise InvalidWebhook("webhook-timestamp too new: more than 5 minutes ahead (check the clocks)")


class WebhookReceiver:
    """Verifies deliveries against the accepted secrets and dedupes them on ``webhook-id``."""

    def __init__(self, secrets: list[str], dedupe: DedupeStore | None = None) -> None:
        if not secrets:
            raise ValueError("give at least one whsec_... secret")
        self.verifiers = [Webhook(secret) for secret in secrets]
        self.dedupe = dedupe if dedupe is not None else MemoryDedupe()

    def verify(self, body: bytes | str, headers: Mapping[str, str]) -> dict[str, Any]:
        """The event, if a signature made with one of the secrets matches and it is fresh."""
        plain = {key.lower(): value for key, value in headers.items()}
        if not all(plain.get(name) for name in ("webhook-id", "webhook-timestamp", "webhook-signature")):
            raise InvalidWebhook("missing webhook-id, webhook-timestamp or webhook-signature header")
        check_signature_header(plain["webhook-signature"])
        check_timestamp(plain["webhook-timestamp"])
        text = body.decode() if isinstance(body, bytes) else body
        for verifier in self.verifiers:
            try:
                event: dict[str, Any] = verifier.verify(text, plain)
                return event
            except WebhookVerificationError:
                continue  # the next secret of a rotation may match
        raise InvalidWebhook(
            "no signature matches: the body, id or timestamp was altered, or the secret differs"
        )

    def receive(self, body: bytes | str, headers: Mapping[str, str]) -> Delivery:
        """Verify, then mark the ``webhook-id`` seen; ``duplicate`` if it was already."""
        event = self.verify(body, headers)
        webhook_id = {key.lower(): value for key, value in headers.items()}["webhook-id"]
        return Delivery(webhook_id, event, duplicate=not self.dedupe.first_time(webhook_id))

    def forget(self, webhook_id: str) -> None:
        """Let a retry of this id through again, after handling it failed."""
        self.dedupe.forget(webhook_id)
