"""The receiver helper against signature test vectors made by hand (HMAC-SHA256 of
``id.timestamp.body``, as the Standard Webhooks spec defines it), and its dedupe stores."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid

import pytest
from redis import Redis

from schemas.webhook_receiver import InvalidWebhook, MemoryDedupe, RedisDedupe, WebhookReceiver
from workers.webhooks.signing import new_secret

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_SECRET = "whsec_dGhpcyBpcyBhbm90aGVyIHNlY3JldCBrZXk="
BODY = b'{"type":"job.succeeded","timestamp":"2026-11-30T12:00:00+00:00","data":{"id":"job_1"}}'


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(signature: str, timestamp: int | None = None, message_id: str = "evt_1") -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp or int(time.time())),
        "webhook-signature": signature,
    }


def test_a_valid_signature_passes() -> None:
    now = int(time.time())
    event = WebhookReceiver([SECRET]).verify(BODY, headers(sign(SECRET, "evt_1", now, BODY), now))
    assert event["type"] == "job.succeeded" and event["data"] == {"id": "job_1"}


def test_one_valid_signature_among_several_passes() -> None:
    now = int(time.time())
    signatures = " ".join(
        ["v1,bm90IGEgc2lnbmF0dXJl", sign(OTHER_SECRET, "evt_1", now, BODY), sign(SECRET, "evt_1", now, BODY)]
    )
    assert WebhookReceiver([SECRET]).verify(BODY, headers(signatures, now))["data"]["id"] == "job_1"


def test_a_tampered_body_fails() -> None:
    now = int(time.time())
    tampered = BODY.replace(b"job_1", b"job_2")
    with pytest.raises(InvalidWebhook, match="no signature matches"):
        WebhookReceiver([SECRET]).verify(tampered, headers(sign(SECRET, "evt_1", now, BODY), now))


def test_the_wrong_secret_fails() -> None:
    now = int(time.time())
    with pytest.raises(InvalidWebhook, match="no signature matches"):
        WebhookReceiver([SECRET]).verify(BODY, headers(sign(OTHER_SECRET, "evt_1", now, BODY), now))


def test_a_timestamp_older_than_five_minutes_fails_though_signed() -> None:
    old = int(time.time()) - 6 * 60
    with pytest.raises(InvalidWebhook, match="too old"):
        WebhookReceiver([SECRET]).verify(BODY, headers(sign(SECRET, "evt_1", old, BODY), old))
    # Four minutes is within the tolerance.
    recent = int(time.time()) - 4 * 60
    assert WebhookReceiver([SECRET]).verify(BODY, headers(sign(SECRET, "evt_1", recent, BODY), recent))


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_fails(missing: str) -> None:
    now = int(time.time())
    sent = headers(sign(SECRET, "evt_1", now, BODY), now)
    del sent[missing]
    with pytest.raises(InvalidWebhook, match="missing"):
        WebhookReceiver([SECRET]).verify(BODY, sent)


@pytest.mark.parametrize("signature", ["v1-no-comma", "v1,not*base64!", "x1,bm90", "v1,"])
def test_a_malformed_signature_header_fails_cleanly(signature: str) -> None:
    with pytest.raises(InvalidWebhook, match="malformed webhook-signature"):
        WebhookReceiver([SECRET]).verify(BODY, headers(signature))


def test_a_timestamp_from_the_future_fails_though_signed() -> None:
    ahead = int(time.time()) + 6 * 60
    with pytest.raises(InvalidWebhook, match="too new"):
        WebhookReceiver([SECRET]).verify(BODY, headers(sign(SECRET, "evt_1", ahead, BODY), ahead))


def test_a_timestamp_that_is_not_unix_seconds_fails() -> None:
    sent = headers(sign(SECRET, "evt_1", int(time.time()), BODY))
    sent["webhook-timestamp"] = "2026-11-30T12:00:00Z"
    with pytest.raises(InvalidWebhook, match="malformed webhook-timestamp"):
        WebhookReceiver([SECRET]).verify(BODY, sent)


def test_either_secret_of_a_rotation_verifies() -> None:
    now = int(time.time())
    receiver = WebhookReceiver([OTHER_SECRET, SECRET])
    assert receiver.verify(BODY, headers(sign(SECRET, "evt_1", now, BODY), now))
    assert receiver.verify(BODY, headers(sign(OTHER_SECRET, "evt_1", now, BODY), now))


def test_a_generated_secret_signs_what_the_helper_verifies() -> None:
    secret, now = new_secret(), int(time.time())
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    assert WebhookReceiver([secret]).verify(BODY, headers(sign(secret, "evt_9", now, BODY), now, "evt_9"))


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_receive_flags_a_repeated_webhook_id_as_duplicate(store: str, redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    dedupe = MemoryDedupe() if store == "memory" else RedisDedupe(redis, prefix=f"t:{uuid.uuid4().hex}")
    receiver = WebhookReceiver([SECRET], dedupe)
    message_id = f"evt_{uuid.uuid4().hex}"
    now = int(time.time())
    sent = headers(sign(SECRET, message_id, now, BODY), now, message_id)

    first, again = receiver.receive(BODY, sent), receiver.receive(BODY, sent)

    assert (first.duplicate, again.duplicate) == (False, True)
    receiver.forget(message_id)  # handling failed: the retry is processed
    assert receiver.receive(BODY, sent).duplicate is False
    # A forged delivery is refused before it can touch the dedupe store.
    with pytest.raises(InvalidWebhook):
        receiver.receive(BODY, headers(sign(OTHER_SECRET, "evt_forged", now, BODY), now, "evt_forged"))
    assert dedupe.first_time("evt_forged") is True
