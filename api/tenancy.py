"""Tenants and their API keys: every change the admin routes and ``switchyard tenants|keys`` make.

One module for both surfaces, so the HTTP API and the CLI validate alike and write the same
audit entries (workers/audit.py), each in the transaction of its change: the caller owns the
session and commits. The CLI's actor is :data:`workers.audit.CLI` (no key).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from api.keys import PLATFORM_SCOPE, PLATFORM_TENANT, create_tenant, new_key
from schemas.admin import KeyCreate, TenantCreate, TenantUpdate
from schemas.errors import InvalidCursor, InvalidRequest, NotFound, UnknownTier
from schemas.settings import Settings
from schemas.spend_errors import KeyNotActive, TenantNameTaken
from schemas.tables import ApiKey, Tenant, utcnow
from workers import audit
from workers.audit import Actor
from workers.paging import CURSOR_PATTERN, cursor_row, newest_first
from workers.tenant_rows import get_owned

TENANT_FIELDS = ("name", "rpm_limit", "max_running_jobs", "timezone", "disabled_at")


def tenant_values(tenant: Tenant) -> dict[str, Any]:
    """What the audit log keeps of a tenant."""
    return {name: getattr(tenant, name) for name in TENANT_FIELDS}


def key_values(key: ApiKey) -> dict[str, Any]:
    """What the audit log keeps of a key: never its hash or secret."""
    return {
        "name": key.name,
        "prefix": key.display_prefix,
        "scopes": key.scopes.split(","),
        "expires_at": key.expires_at,
        "allowed_tiers": key.allowed_tiers,
        "revoked_at": key.revoked_at,
    }


def add_tenant(session: Session, actor: Actor, body: TenantCreate) -> Tenant:
    """A new tenant (``tenant.created``); 409 ``tenant_name_taken`` if the name is in use."""
    _require_free_name(session, body.name)
    tenant = create_tenant(session, body.name, body.rpm_limit, body.max_running_jobs)
    tenant.timezone = body.timezone
    session.flush()
    audit.record(
        session, actor, "tenant.created", "tenant", tenant.id, tenant.id, after=tenant_values(tenant)
    )
    return tenant


def list_tenants(session: Session, limit: int, cursor: str | None) -> list[Tenant]:
    """Every tenant, newest first, one more than ``limit`` (workers/paging.py)."""
    after = session.get(Tenant, cursor) if cursor and CURSOR_PATTERN.fullmatch(cursor) else None
    if cursor is not None and after is None:
        raise InvalidCursor(f"cursor {cursor[:80]!r} is not a tenant of one of your pages.", param="cursor")
    return list(session.exec(newest_first(select(Tenant), Tenant, after, limit)).all())


def get_tenant(session: Session, tenant_id: str) -> Tenant:
    """The tenant, or 404."""
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(f"No tenant {tenant_id!r}.", param="tenant_id")
    return tenant


def find_tenant(session: Session, id_or_name: str) -> Tenant:
    """The tenant by id or by name (the CLI accepts either), or 404."""
    found = session.exec(
        select(Tenant).where((Tenant.id == id_or_name) | (Tenant.name == id_or_name))
    ).first()
    if found is None:
        raise NotFound(f"No tenant {id_or_name!r}; create it with `switchyard tenants create`.")
    return found


def update_tenant(session: Session, actor: Actor, tenant_id: str, body: TenantUpdate) -> Tenant:
    """Change the fields given (``tenant.updated``); a limit given as None follows the defaults."""
    tenant = get_tenant(session, tenant_id)
    before = tenant_values(tenant)
    changes = body.model_dump(include=body.model_fields_set)
    for name in ("name", "timezone"):
        if changes.get(name, "") is None:
            raise InvalidRequest(f"{name} cannot be null.", param=name)
    if changes.get("name") not in (None, tenant.name):
        _require_free_name(session, changes["name"])
    for name, value in changes.items():
        setattr(tenant, name, value)
    session.add(tenant)
    if tenant_values(tenant) != before:
        audit.record(
            session, actor, "tenant.updated", "tenant", tenant.id, tenant.id, before, tenant_values(tenant)
        )
    return tenant


def set_tenant_disabled(session: Session, actor: Actor, tenant_id: str, disabled: bool) -> Tenant:
    """Disable (its keys get 403 ``tenant_disabled``) or enable a tenant; the same state again
    changes nothing and writes no entry. Its accepted jobs are left as they are (docs/spend.md)."""
    tenant = get_tenant(session, tenant_id)
    if tenant.name == PLATFORM_TENANT:
        raise InvalidRequest("The platform tenant holds the platform admin keys; it cannot be disabled.")
    if (tenant.disabled_at is not None) == disabled:
        return tenant
    before = tenant_values(tenant)
    tenant.disabled_at = utcnow() if disabled else None
    session.add(tenant)
    action = "tenant.disabled" if disabled else "tenant.enabled"
    audit.record(session, actor, action, "tenant", tenant.id, tenant.id, before, tenant_values(tenant))
    return tenant


def add_key(
    session: Session, actor: Actor, settings: Settings, tenant_id: str, body: KeyCreate
) -> tuple[ApiKey, str]:
    """A new key of the tenant (``key.created``): its row and its secret, shown once."""
    get_tenant(session, tenant_id)
    _check_tiers(settings, body.allowed_tiers or [])
    now = utcnow()
    expires_at = body.expires_at or (
        now + timedelta(seconds=body.expires_in_s) if body.expires_in_s else None
    )
    if expires_at is not None and expires_at <= now:
        raise InvalidRequest("expires_at is in the past; give a future time.", param="expires_at")
    row, secret = new_key(
        session,
        tenant_id,
        set(body.scopes),
        body.name,
        expires_at=expires_at,
        allowed_tiers=body.allowed_tiers,
    )
    audit.record(session, actor, "key.created", "api_key", row.id, tenant_id, after=key_values(row))
    return row, secret


def add_platform_key(session: Session, actor: Actor, name: str) -> tuple[ApiKey, str]:
    """A platform admin key (``key.created``), in the platform tenant made on first use. Only the
    host (the CLI, ``switchyard up``) makes one: no route grants the ``platform`` scope."""
    tenant = session.exec(select(Tenant).where(Tenant.name == PLATFORM_TENANT)).first()
    if tenant is None:
        tenant = create_tenant(session, PLATFORM_TENANT)
        session.flush()
    row, secret = new_key(session, tenant.id, {PLATFORM_SCOPE}, name, platform=True)
    audit.record(session, actor, "key.created", "api_key", row.id, tenant.id, after=key_values(row))
    return row, secret


def list_keys(session: Session, tenant_id: str, limit: int, cursor: str | None) -> list[ApiKey]:
    """The tenant's keys, revoked ones too, newest first, one more than ``limit``."""
    after = cursor_row(session, ApiKey, tenant_id, cursor)
    query = select(ApiKey).where(col(ApiKey.tenant_id) == tenant_id)
    return list(session.exec(newest_first(query, ApiKey, after, limit)).all())


def get_key(session: Session, tenant_id: str, key_id: str) -> ApiKey:
    """The tenant's key, or 404 (another tenant's key too)."""
    return get_owned(session, ApiKey, tenant_id, key_id, "API key", "key_id")


def revoke_key(session: Session, actor: Actor, tenant_id: str, key_id: str) -> ApiKey:
    """Revoke the key (``key.revoked``): refused by every API process within a second. Revoking
    a revoked key changes nothing."""
    key = get_key(session, tenant_id, key_id)
    if key.revoked_at is not None:
        return key
    before = key_values(key)
    key.revoked_at = utcnow()
    session.add(key)
    audit.record(session, actor, "key.revoked", "api_key", key.id, tenant_id, before, key_values(key))
    return key


def rotate_key(
    session: Session, actor: Actor, tenant_id: str, key_id: str, grace_s: int
) -> tuple[ApiKey, str]:
    """A new secret with the old key's name, scopes, tiers and expiry (``key.rotated``); the old
    key works until ``grace_s`` from now (its ``expires_at``), then gets 401."""
    old = get_key(session, tenant_id, key_id)
    now = utcnow()
    if old.revoked_at is not None or (old.expires_at is not None and old.expires_at <= now):
        raise KeyNotActive(f"API key {key_id!r} is revoked or expired; create a new key instead.")
    scopes = set(old.scopes.split(","))
    new, secret = new_key(
        session,
        tenant_id,
        scopes,
        old.name,
        platform=PLATFORM_SCOPE in scopes,  # a rotation keeps what the key had, grants nothing
        expires_at=old.expires_at,
        allowed_tiers=old.allowed_tiers,
    )
    before = key_values(old)
    old.expires_at = _earliest(old.expires_at, now + timedelta(seconds=grace_s))
    session.add(old)
    after = {**key_values(old), "replaced_by": new.id}
    audit.record(session, actor, "key.rotated", "api_key", old.id, tenant_id, before, after)
    return new, secret


def _require_free_name(session: Session, name: str) -> None:
    if session.exec(select(Tenant.id).where(Tenant.name == name)).first() is not None:
        raise TenantNameTaken(f"A tenant named {name!r} exists already; pick another name.", name=name)


def _check_tiers(settings: Settings, tiers: list[str]) -> None:
    known = set(settings.tiers) | set(getattr(settings, "auto_tiers", {}))
    unknown = sorted(set(tiers) - known)
    if unknown:
        raise UnknownTier(
            f"Unknown tiers {unknown} in allowed_tiers; known tiers: {', '.join(sorted(known))}.",
            known_tiers=sorted(known),
        )


def _earliest(first: datetime | None, second: datetime) -> datetime:
    return second if first is None else min(first, second)
