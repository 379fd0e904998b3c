"""Endpoint state the senders need: the cached subscription list, secrets, health and disabling."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from redis import Redis
from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from schemas.tables import TenantWebhookSecret, WebhookEndpoint, utcnow
from workers.keys import RedisKeys
from workers.webhooks.signing import live_secrets, new_secret

ENDPOINTS = WebhookEndpoint.__table__  # type: ignore[attr-defined]
TENANT_SECRETS = TenantWebhookSecret.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Subscription:
    """An enabled endpoint and the event types it wants (empty: all)."""

    endpoint_id: str
    url: str
    event_types: tuple[str, ...]

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


def subscriptions(
    engine: Engine,
    redis: Redis,
    keys: RedisKeys,
    tenant_id: str,
    ttl_s: int,
    cached: bytes | str | None = None,
) -> list[Subscription]:
    """The tenant's enabled endpoints, from Redis when cached (one GET on the hot path, or
    none when the caller passes the ``cached`` list it read in its own round trip)."""
    name = keys.webhook_endpoints(tenant_id)
    if cached is None:
        cached = redis.get(name)
    if cached is None:
        rows = _enabled_endpoints(engine, tenant_id)
        redis.set(name, json.dumps(rows), ex=ttl_s)
    else:
        rows = json.loads(cached)
    return [Subscription(row["id"], row["url"], tuple(row["event_types"])) for row in rows]


def forget_subscriptions(redis: Redis, keys: RedisKeys, tenant_id: str) -> None:
    """Drop the cached list after any change to the tenant's endpoints."""
    redis.delete(keys.webhook_endpoints(tenant_id))


def _enabled_endpoints(engine: Engine, tenant_id: str) -> list[dict[str, Any]]:
    query = select(ENDPOINTS.c.id, ENDPOINTS.c.url, ENDPOINTS.c.event_types).where(
        ENDPOINTS.c.tenant_id == tenant_id, ENDPOINTS.c.enabled.is_(True)
    )
    with engine.connect() as connection:
        return [
            {"id": r.id, "url": r.url, "event_types": list(r.event_types)} for r in connection.execute(query)
        ]


def endpoint_secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The secrets that sign a delivery to this endpoint now."""
    return live_secrets(endpoint.secret, endpoint.previous_secret, endpoint.previous_secret_expires_at, now)


def tenant_secret(engine: Engine, tenant_id: str) -> TenantWebhookSecret:
    """The tenant's default secret (for callback URLs), created on first use."""
    now = utcnow()
    module: Any = postgresql if engine.dialect.name == "postgresql" else sqlite
    create = module.insert(TENANT_SECRETS).on_conflict_do_nothing(index_elements=["tenant_id"])
    values = {"tenant_id": tenant_id, "secret": new_secret(), "created_at": now, "updated_at": now}
    with engine.begin() as connection:
        connection.execute(create, values)
        row = connection.execute(select(TENANT_SECRETS).where(TENANT_SECRETS.c.tenant_id == tenant_id)).one()
    return TenantWebhookSecret(**row._mapping)


def mark_healthy(engine: Engine, endpoint_id: str) -> None:
    """A success ends a failing streak."""
    statement = (
        update(ENDPOINTS)
        .where(ENDPOINTS.c.id == endpoint_id, ENDPOINTS.c.failing_since.is_not(None))
        .values(failing_since=None)
    )
    with engine.begin() as connection:
        connection.execute(statement)


def mark_failing(engine: Engine, endpoint_id: str, disable_after_s: float) -> bool:
    """Start or extend a failing streak; True if it is now long enough to disable the endpoint."""
    now = utcnow()
    with engine.begin() as connection:
        connection.execute(
            update(ENDPOINTS)
            .where(ENDPOINTS.c.id == endpoint_id)
            .values(failing_since=func.coalesce(ENDPOINTS.c.failing_since, now))
        )
        since = connection.execute(
            select(ENDPOINTS.c.failing_since).where(ENDPOINTS.c.id == endpoint_id)
        ).scalar()
    return since is not None and _aware(since) <= now - timedelta(seconds=disable_after_s)


def disable(engine: Engine, redis: Redis, keys: RedisKeys, endpoint: WebhookEndpoint, reason: str) -> None:
    """Stop sending to the endpoint and say why; the tenant re-enables it with PATCH."""
    now = utcnow()
    statement = (
        update(ENDPOINTS)
        .where(ENDPOINTS.c.id == endpoint.id, ENDPOINTS.c.enabled.is_(True))
        .values(enabled=False, disabled_reason=reason[:200], disabled_at=now, updated_at=now)
    )
    with engine.begin() as connection:
        connection.execute(statement)
    forget_subscriptions(redis, keys, endpoint.tenant_id)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
