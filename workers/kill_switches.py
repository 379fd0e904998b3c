"""Setting, lifting and listing kill switches: what the admin routes and the CLI share.

The ``kill_switches`` table is the truth. Each change commits with its audit entry
(``kill_switch.set`` / ``kill_switch.lifted``) and then announces itself in Redis
(workers/kill_switch_board.py), where every worker sees it at its next provider call.

``tenant_admin`` is the tenant of a tenant admin acting on their own tenant, None for the
platform admin. A tenant admin's switch always carries their ``tenant_id``; they see and
lift only the switches their own keys set, so a stop the platform put on them is not theirs
to lift. ``tenant`` and ``api_key`` switches record the tenant they concern as ``tenant_id``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from redis import Redis
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, or_, select

from schemas.errors import InvalidRequest, NotFound, UnknownModel, UnknownTier
from schemas.kill_switches import KillSwitchCreate, KillSwitchPublic
from schemas.settings import Settings
from schemas.spend_errors import KillSwitchExists
from schemas.spend_tables import KillSwitch
from schemas.tables import ApiKey, Tenant, utcnow
from workers import audit
from workers.ids import new_id
from workers.keys import RedisKeys
from workers.kill_switch_board import announce_change


def set_switch(
    session: Session,
    redis: Redis,
    keys: RedisKeys,
    settings: Settings,
    actor: audit.Actor,
    spec: KillSwitchCreate,
    tenant_admin: str | None = None,
) -> KillSwitch:
    """Record a new switch with its audit entry, commit, and announce it to the workers."""
    value, tenant_id = _target(session, settings, spec, tenant_admin)
    same = session.exec(
        select(KillSwitch).where(
            KillSwitch.scope == spec.scope,
            KillSwitch.value == value,
            KillSwitch.tenant_id == tenant_id,
            col(KillSwitch.lifted_at).is_(None),
        )
    ).first()
    if same is not None:
        raise KillSwitchExists(
            f"Kill switch {same.id} already stops {spec.scope} {value!r}; lift it first to change it.",
            kill_switch=same.id,
        )
    row = KillSwitch(
        id=new_id("ks"),
        scope=spec.scope,
        value=value,
        tenant_id=tenant_id,
        fail_queued=spec.fail_queued,
        reason=spec.reason,
        created_by=actor.key_id,
        created_at=utcnow(),
    )
    session.add(row)
    audit.record(session, actor, "kill_switch.set", "kill_switch", row.id, tenant_id, None, _values(row))
    session.commit()
    announce_change(redis, keys)
    return row


def lift_switch(
    session: Session,
    redis: Redis,
    keys: RedisKeys,
    actor: audit.Actor,
    switch_id: str,
    tenant_admin: str | None = None,
) -> KillSwitch:
    """Lift a switch (the row stays as history), with its audit entry; lifting twice changes nothing."""
    row = get_switch(session, switch_id, tenant_admin)
    if row.lifted_at is not None:
        return row
    before = _values(row)
    row.lifted_at, row.lifted_by = utcnow(), actor.key_id
    session.add(row)
    audit.record(
        session, actor, "kill_switch.lifted", "kill_switch", row.id, row.tenant_id, before, _values(row)
    )
    session.commit()
    announce_change(redis, keys)
    return row


def get_switch(session: Session, switch_id: str, tenant_admin: str | None = None) -> KillSwitch:
    """The switch, if the caller may manage it; 404 otherwise (another tenant's ids do not exist)."""
    query = select(KillSwitch).where(KillSwitch.id == switch_id)
    row = session.exec(_managed_by(query, tenant_admin)).first()
    if row is None:
        raise NotFound(f"No kill switch {switch_id!r}.")
    return row


def list_switches(
    session: Session, include_lifted: bool, tenant_admin: str | None = None
) -> list[KillSwitch]:
    """The switches the caller manages, newest first; the active ones only unless ``include_lifted``."""
    query = _managed_by(select(KillSwitch), tenant_admin)
    if not include_lifted:
        query = query.where(col(KillSwitch.lifted_at).is_(None))
    return list(session.exec(query.order_by(col(KillSwitch.created_at).desc()).limit(1000)).all())


def applying_to(engine: Engine, tenant_id: str | None) -> list[KillSwitch]:
    """The active switches that can stop calls of ``tenant_id`` (every active one for None)."""
    query = select(KillSwitch).where(col(KillSwitch.lifted_at).is_(None))
    if tenant_id is not None:
        query = query.where(or_(col(KillSwitch.tenant_id).is_(None), KillSwitch.tenant_id == tenant_id))
    with Session(engine) as session:
        return list(session.exec(query.order_by(col(KillSwitch.created_at).desc())).all())


def _managed_by(query: Any, tenant_admin: str | None) -> Any:
    if tenant_admin is None:
        return query
    own_keys = select(ApiKey.id).where(ApiKey.tenant_id == tenant_admin)
    return query.where(KillSwitch.tenant_id == tenant_admin, col(KillSwitch.created_by).in_(own_keys))


def _target(
    session: Session, settings: Settings, spec: KillSwitchCreate, tenant_admin: str | None
) -> tuple[str, str | None]:
    """The switch's ``(value, tenant_id)``, checked: what it names exists and the caller may stop it."""
    tenant_id = spec.tenant_id
    if tenant_admin is not None:
        if tenant_id not in (None, tenant_admin):
            raise NotFound(f"No tenant {tenant_id!r}.")
        tenant_id = tenant_admin
    elif tenant_id is not None and session.get(Tenant, tenant_id) is None:
        raise NotFound(f"No tenant {tenant_id!r}.")
    if spec.scope == "all":
        if spec.value:
            raise InvalidRequest("A switch of scope 'all' names nothing: leave value empty.", field="value")
        return "", tenant_id
    if spec.scope in ("tenant", "api_key"):
        return _owner_target(session, spec, tenant_id, tenant_admin)
    _check_configured(settings, spec.scope, spec.value)
    return spec.value, tenant_id


def _owner_target(
    session: Session, spec: KillSwitchCreate, tenant_id: str | None, tenant_admin: str | None
) -> tuple[str, str]:
    """A tenant or an API key: it must exist (and be the tenant admin's own); it sets ``tenant_id``."""
    value = spec.value
    if not value and spec.scope == "tenant" and tenant_admin is not None:
        value = tenant_admin  # a tenant admin's 'tenant' switch is their own tenant
    if not value:
        raise InvalidRequest(f"A {spec.scope} switch names its {spec.scope} in value.", field="value")
    if spec.scope == "tenant":
        owner: str | None = value if session.get(Tenant, value) is not None else None
    else:
        key = session.get(ApiKey, value)
        owner = key.tenant_id if key is not None else None
    if owner is None or (tenant_admin is not None and owner != tenant_admin):
        raise NotFound(f"No {spec.scope.replace('_', ' ')} {value!r}.")
    if tenant_id is not None and tenant_id != owner:
        raise InvalidRequest(f"{spec.scope} {value!r} is not of tenant {tenant_id!r}.", field="tenant_id")
    return value, owner


def _check_configured(settings: Settings, scope: str, value: str) -> None:
    configured: dict[str, Mapping[str, object]] = {
        "tier": settings.tiers,
        "model": settings.models,
        "provider": settings.providers,
    }
    known = configured[scope]
    if value in known:
        return
    message = f"Unknown {scope} {value!r}; known: {', '.join(sorted(known))}."
    if scope == "tier":
        raise UnknownTier(message)
    if scope == "model":
        raise UnknownModel(message)
    raise InvalidRequest(message, field="value")


def _values(row: KillSwitch) -> dict[str, Any]:
    """The switch as the audit log keeps it."""
    return KillSwitchPublic.from_row(row).model_dump(mode="json")
