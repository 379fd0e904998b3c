"""``Idempotency-Key`` (IETF httpapi draft): same key and body, same job; other body, 422."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

from sqlmodel import Session, select

from schemas.errors import IdempotencyKeyReused, InvalidIdempotencyKey
from schemas.tables import IdempotencyRecord, utcnow

MAX_KEY_LENGTH = 255


def parse_key(header: str | None) -> str | None:
    """The key from the header; the draft's quoted sf-string form and a bare token both work."""
    if header is None:
        return None
    key = header.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable() or not key.isascii():
        raise InvalidIdempotencyKey(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters."
        )
    return key


def fingerprint(body: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of the request body."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def find_replay(session: Session, tenant_id: str, key: str, request_hash: str) -> str | None:
    """The job id an earlier identical request made, or None for a new key.

    Raises 422 if the key was used with a different body. Expired records are dropped.
    """
    record = session.exec(
        select(IdempotencyRecord).where(
            IdempotencyRecord.tenant_id == tenant_id, IdempotencyRecord.key == key
        )
    ).first()
    if record is None:
        return None
    if record.expires_at <= utcnow():
        session.delete(record)
        session.flush()
        return None
    if record.request_hash != request_hash:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used with a different request body; use a new "
            "key for a new request.",
            job_id=record.job_id,
        )
    return record.job_id


def remember(session: Session, tenant_id: str, key: str, request_hash: str, job_id: str, ttl_s: int) -> None:
    """Store the key for ``ttl_s`` seconds (the caller commits)."""
    now = utcnow()
    session.add(
        IdempotencyRecord(
            tenant_id=tenant_id,
            key=key,
            request_hash=request_hash,
            job_id=job_id,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_s),
        )
    )
