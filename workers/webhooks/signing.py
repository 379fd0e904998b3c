"""Secrets and signatures, Standard Webhooks style, through the ``standardwebhooks`` package."""

from __future__ import annotations

import base64
import secrets
from datetime import datetime
from math import floor

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    """A fresh signing secret, ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def live_secrets(
    secret: str, previous: str | None, previous_expires_at: datetime | None, now: datetime
) -> list[str]:
    """The secrets that sign now: the current one, and the rotated-out one during its grace."""
    if previous and previous_expires_at is not None and previous_expires_at > now:
        return [secret, previous]
    return [secret]


def signed_headers(message_id: str, body: str, signing_secrets: list[str], now: datetime) -> dict[str, str]:
    """The ``webhook-*`` headers of one attempt: a fresh timestamp and one signature per secret."""
    signatures = " ".join(Webhook(secret).sign(message_id, now, body) for secret in signing_secrets)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(floor(now.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
    }
