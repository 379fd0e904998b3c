"""Webhook endpoints, deliveries and the tenant's default secret, for the routes.

URLs pass the form check of ``callback_url`` and the SSRF guard when they are registered
(and again at every send, in the worker). Changes drop the tenant's cached endpoint list so
the next event sees them at once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from api.job_limits import check_callback_url
from api.keys import Principal
from api.services import Services
from schemas.errors import (
    DeliveryPending,
    TooManyWebhookEndpoints,
    UnknownEventType,
    WebhookEndpointDisabled,
)
from schemas.tables import TenantWebhookSecret, WebhookDelivery, WebhookEndpoint, utcnow
from schemas.webhooks import EVENT_TYPES, BulkRedeliver, EndpointCreate, EndpointUpdate
from workers import audit
from workers.audit import Actor
from workers.db import session_scope
from workers.ids import new_id
from workers.paging import cursor_row, newest_first
from workers.tenant_rows import get_owned
from workers.webhooks import deliveries
from workers.webhooks.emitter import publish_attempt
from workers.webhooks.endpoints import forget_subscriptions, tenant_secret
from workers.webhooks.signing import new_secret
from workers.webhooks.ssrf import check_registered_url

MAX_BULK_REDELIVERIES = 10_000


def check_webhook_url(services: Services, url: str) -> None:
    """Form and SSRF checks of an endpoint URL."""
    check_callback_url(url)
    check_registered_url(url, services.settings.webhooks)


def endpoint_values(row: WebhookEndpoint) -> dict[str, Any]:
    """What the audit log keeps of an endpoint: never its secrets."""
    return {
        "url": row.url,
        "event_types": row.event_types,
        "description": row.description,
        "enabled": row.enabled,
    }


def create_endpoint(
    services: Services, principal: Principal, actor: Actor, body: EndpointCreate
) -> WebhookEndpoint:
    """Register an endpoint with a fresh secret."""
    check_webhook_url(services, body.url)
    now = utcnow()
    row = WebhookEndpoint(
        id=new_id("we"),
        tenant_id=principal.tenant_id,
        url=body.url,
        event_types=_event_types(body.event_types or []),
        description=body.description or "",
        secret=new_secret(),
        enabled=body.enabled is not False,
        created_at=now,
        updated_at=now,
    )
    with session_scope(services.engine) as session:
        count = session.exec(
            select(func.count())
            .select_from(WebhookEndpoint)
            .where(WebhookEndpoint.tenant_id == principal.tenant_id)
        ).one()
        limit = services.settings.webhooks.max_endpoints_per_tenant
        if count >= limit:
            raise TooManyWebhookEndpoints(
                f"A tenant may have at most {limit} webhook endpoints; delete one first."
            )
        session.add(row)
        _record(session, actor, "webhook_endpoint.created", row, after=endpoint_values(row))
    forget_subscriptions(services.redis, services.keys, principal.tenant_id)
    return row


def list_endpoints(session: Session, tenant_id: str, limit: int, cursor: str | None) -> list[WebhookEndpoint]:
    after = cursor_row(session, WebhookEndpoint, tenant_id, cursor)
    query = select(WebhookEndpoint).where(WebhookEndpoint.tenant_id == tenant_id)
    return list(session.exec(newest_first(query, WebhookEndpoint, after, limit)).all())


def get_endpoint(session: Session, tenant_id: str, endpoint_id: str) -> WebhookEndpoint:
    return get_owned(session, WebhookEndpoint, tenant_id, endpoint_id, "webhook endpoint", "endpoint_id")


def update_endpoint(
    services: Services, principal: Principal, actor: Actor, endpoint_id: str, body: EndpointUpdate
) -> WebhookEndpoint:
    """Change the given fields; ``enabled: true`` re-enables and clears the failing streak."""
    if body.url is not None:
        check_webhook_url(services, body.url)
    with session_scope(services.engine) as session:
        row = get_endpoint(session, principal.tenant_id, endpoint_id)
        before = endpoint_values(row)
        if body.url is not None:
            row.url = body.url
        if body.event_types is not None:
            row.event_types = _event_types(body.event_types)
        if body.description is not None:
            row.description = body.description
        if body.enabled is not None:
            _set_enabled(row, body.enabled)
        row.updated_at = utcnow()
        session.add(row)
        _record(session, actor, "webhook_endpoint.updated", row, before, endpoint_values(row))
    forget_subscriptions(services.redis, services.keys, principal.tenant_id)
    return row


def delete_endpoint(services: Services, principal: Principal, actor: Actor, endpoint_id: str) -> None:
    """Drop the endpoint; its pending deliveries fail at their next attempt."""
    with session_scope(services.engine) as session:
        row = get_endpoint(session, principal.tenant_id, endpoint_id)
        _record(session, actor, "webhook_endpoint.deleted", row, before=endpoint_values(row))
        session.delete(row)
    forget_subscriptions(services.redis, services.keys, principal.tenant_id)


def rotate_endpoint_secret(
    services: Services, principal: Principal, actor: Actor, endpoint_id: str, grace_s: int | None
) -> WebhookEndpoint:
    """A new secret; the old one keeps signing (both signatures sent) for the grace period."""
    with session_scope(services.engine) as session:
        row = get_endpoint(session, principal.tenant_id, endpoint_id)
        row.previous_secret, row.previous_secret_expires_at = row.secret, _grace_end(services, grace_s)
        row.secret = new_secret()
        row.updated_at = utcnow()
        session.add(row)
        grace_end = {"previous_secret_expires_at": row.previous_secret_expires_at}
        _record(session, actor, "webhook_endpoint.secret_rotated", row, after=grace_end)
    return row


def read_tenant_secret(services: Services, principal: Principal) -> TenantWebhookSecret:
    """The tenant's default secret, created on first read."""
    return tenant_secret(services.engine, principal.tenant_id)


def rotate_tenant_secret(
    services: Services, principal: Principal, actor: Actor, grace_s: int | None
) -> TenantWebhookSecret:
    tenant_secret(services.engine, principal.tenant_id)  # make sure it exists
    with session_scope(services.engine) as session:
        row = session.get(TenantWebhookSecret, principal.tenant_id)
        assert row is not None
        row.previous_secret, row.previous_secret_expires_at = row.secret, _grace_end(services, grace_s)
        row.secret = new_secret()
        row.updated_at = utcnow()
        session.add(row)
        after = {"previous_secret_expires_at": row.previous_secret_expires_at}
        tenant_id = principal.tenant_id
        audit.record(
            session, actor, "webhook_secret.rotated", "webhook_secret", tenant_id, tenant_id, after=after
        )
    return row


def list_deliveries(
    session: Session,
    tenant_id: str,
    limit: int,
    cursor: str | None,
    status: str | None,
    endpoint_id: str | None,
) -> list[WebhookDelivery]:
    after = cursor_row(session, WebhookDelivery, tenant_id, cursor)
    query = select(WebhookDelivery).where(WebhookDelivery.tenant_id == tenant_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if endpoint_id is not None:
        query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
    return list(session.exec(newest_first(query, WebhookDelivery, after, limit)).all())


def get_delivery(session: Session, tenant_id: str, delivery_id: str) -> WebhookDelivery:
    return get_owned(session, WebhookDelivery, tenant_id, delivery_id, "webhook delivery", "delivery_id")


def redeliver(services: Services, principal: Principal, actor: Actor, delivery_id: str) -> WebhookDelivery:
    """Send an ended delivery again, same ``webhook-id``, with a fresh schedule."""
    with Session(services.engine) as session:
        row = get_delivery(session, principal.tenant_id, delivery_id)
        if row.endpoint_id is not None:
            _require_enabled(session, principal.tenant_id, row.endpoint_id)
    if row.status == deliveries.PENDING:
        raise DeliveryPending(f"Delivery {delivery_id!r} is still being tried; wait for it to end.")
    ids = deliveries.reopen(services.engine, [deliveries.TABLE.c.id == delivery_id], _hold(services), 1)
    if not ids:
        raise DeliveryPending(f"Delivery {delivery_id!r} is being tried again already.")
    publish_attempt(services.celery, services.keys, delivery_id, 0)
    with session_scope(services.engine) as session:
        # After the reopen, which commits on its own: the entry records a redelivery that happened.
        row = get_delivery(session, principal.tenant_id, delivery_id)
        after = {"endpoint_id": row.endpoint_id, "event_type": row.event_type}
        audit.record(
            session,
            actor,
            "delivery.redelivered",
            "webhook_delivery",
            delivery_id,
            principal.tenant_id,
            after=after,
        )
        return row


def redeliver_range(services: Services, principal: Principal, actor: Actor, body: BulkRedeliver) -> list[str]:
    """Send again the endpoint's ended deliveries created in ``[since, until)``."""
    with Session(services.engine) as session:
        _require_enabled(session, principal.tenant_id, body.endpoint_id)
    table = deliveries.TABLE
    conditions: list[Any] = [
        table.c.tenant_id == principal.tenant_id,
        table.c.endpoint_id == body.endpoint_id,
        table.c.status == body.status,
        table.c.created_at >= _utc(body.since),
        table.c.created_at < _utc(body.until or utcnow()),
    ]
    ids = deliveries.reopen(services.engine, conditions, _hold(services), MAX_BULK_REDELIVERIES)
    for delivery_id in ids:
        publish_attempt(services.celery, services.keys, delivery_id, 0)
    with session_scope(services.engine) as session:
        after = {**body.model_dump(mode="json"), "redelivered": len(ids)}
        audit.record(
            session,
            actor,
            "delivery.redelivered",
            "webhook_endpoint",
            body.endpoint_id,
            principal.tenant_id,
            after=after,
        )
    return ids


def _require_enabled(session: Session, tenant_id: str, endpoint_id: str) -> None:
    endpoint = get_endpoint(session, tenant_id, endpoint_id)
    if not endpoint.enabled:
        raise WebhookEndpointDisabled(
            f"Webhook endpoint {endpoint_id!r} is disabled ({endpoint.disabled_reason}); "
            'enable it with PATCH {"enabled": true} first.',
            endpoint_id=endpoint_id,
        )


def _record(
    session: Session,
    actor: Actor,
    action: str,
    row: WebhookEndpoint,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    audit.record(session, actor, action, "webhook_endpoint", row.id, row.tenant_id, before, after)


def _set_enabled(row: WebhookEndpoint, enabled: bool) -> None:
    if enabled and not row.enabled:
        row.disabled_reason, row.disabled_at, row.failing_since = None, None, None
    elif not enabled and row.enabled:
        row.disabled_reason, row.disabled_at = "disabled by the tenant", utcnow()
    row.enabled = enabled


def _event_types(types: list[str]) -> list[str]:
    unknown = sorted(set(types) - set(EVENT_TYPES))
    if unknown:
        raise UnknownEventType(
            f"Unknown event types {unknown}; known: {', '.join(EVENT_TYPES)}.",
            known_event_types=list(EVENT_TYPES),
        )
    return sorted(set(types))


def _grace_end(services: Services, grace_s: int | None) -> datetime:
    seconds = services.settings.webhooks.rotation_grace_s if grace_s is None else grace_s
    return utcnow() + timedelta(seconds=seconds)


def _hold(services: Services) -> float:
    return services.settings.webhooks.claim_s


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
