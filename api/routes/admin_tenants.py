"""The platform admin's tenants: create, list, read, change limits and time zone, disable and
enable, and any tenant's API keys. Only a platform admin key (scope ``platform``, made with
``switchyard keys platform``) may call these; a tenant's keys, even ``admin`` ones, get 403.

A disabled tenant's keys get 403 ``tenant_disabled`` on every API process within a second;
its accepted jobs are left to run (docs/spend.md, "Admin API and audit log").
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from api import tenancy
from api.deps import Cursor, PlatformAdmin, ServicesDep, SessionDep, actor_of
from api.principal_cache import auth_change
from api.routes.keys import KeyId, created, key_page
from schemas.admin import (
    KeyCreate,
    KeyCreated,
    KeyList,
    KeyPublic,
    KeyRotate,
    TenantCreate,
    TenantList,
    TenantPublic,
    TenantUpdate,
)
from workers.db import session_scope
from workers.paging import split_page

router = APIRouter(prefix="/v1/admin/tenants", tags=["admin"])

TenantId = Annotated[
    str, Path(max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="The tenant's id, `ten_...`.")
]
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "`invalid_request` (e.g. disabling the platform tenant), `unknown_tier`."},
    401: {"description": "Missing, unknown, revoked or expired API key."},
    403: {"description": "`insufficient_scope`: not a platform admin key."},
    404: {"description": "No such tenant (or key of that tenant)."},
    409: {"description": "`tenant_name_taken`, `key_not_active`."},
    422: {"description": "Malformed body (unknown field, unknown time zone...)."},
}


@router.post("", status_code=201, response_model=TenantPublic, responses=ERRORS, summary="Create a tenant")
def create_tenant(
    body: TenantCreate, request: Request, services: ServicesDep, principal: PlatformAdmin
) -> TenantPublic:
    with session_scope(services.engine) as session:
        tenant = tenancy.add_tenant(session, actor_of(request, principal), body)
    return TenantPublic.from_row(tenant)


@router.get("", response_model=TenantList, responses=ERRORS, summary="List tenants")
def list_tenants(
    session: SessionDep,
    principal: PlatformAdmin,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Cursor = None,
) -> TenantList:
    """Every tenant, newest first, disabled ones too (`disabled_at` set)."""
    page, has_more, next_cursor = split_page(tenancy.list_tenants(session, limit, cursor), limit)
    return TenantList(
        data=[TenantPublic.from_row(row) for row in page], has_more=has_more, next_cursor=next_cursor
    )


@router.get("/{tenant_id}", response_model=TenantPublic, responses=ERRORS, summary="Get a tenant")
def get_tenant(tenant_id: TenantId, session: SessionDep, principal: PlatformAdmin) -> TenantPublic:
    return TenantPublic.from_row(tenancy.get_tenant(session, tenant_id))


@router.patch("/{tenant_id}", response_model=TenantPublic, responses=ERRORS, summary="Change a tenant")
def update_tenant(
    tenant_id: TenantId, body: TenantUpdate, request: Request, services: ServicesDep, principal: PlatformAdmin
) -> TenantPublic:
    """Change the fields given: name, `rpm_limit`, `max_running_jobs` (null: the config's
    default), `timezone`. API and workers pick new limits up within 30 s."""
    with session_scope(services.engine) as session:
        tenant = tenancy.update_tenant(session, actor_of(request, principal), tenant_id, body)
    return TenantPublic.from_row(tenant)


@router.post("/{tenant_id}/disable", response_model=TenantPublic, responses=ERRORS, summary="Disable")
def disable_tenant(
    tenant_id: TenantId, request: Request, services: ServicesDep, principal: PlatformAdmin
) -> TenantPublic:
    """Refuse the tenant's keys (403 `tenant_disabled`) on every API process within a second.
    Jobs it already submitted still run; engage a tenant kill switch to stop them too."""
    return _set_disabled(tenant_id, request, services, principal, True)


@router.post("/{tenant_id}/enable", response_model=TenantPublic, responses=ERRORS, summary="Enable")
def enable_tenant(
    tenant_id: TenantId, request: Request, services: ServicesDep, principal: PlatformAdmin
) -> TenantPublic:
    return _set_disabled(tenant_id, request, services, principal, False)


def _set_disabled(
    tenant_id: str, request: Request, services: ServicesDep, principal: PlatformAdmin, disabled: bool
) -> TenantPublic:
    with auth_change(services.engine, services.redis, services.keys) as session:
        tenant = tenancy.set_tenant_disabled(session, actor_of(request, principal), tenant_id, disabled)
    return TenantPublic.from_row(tenant)


@router.post(
    "/{tenant_id}/keys", status_code=201, response_model=KeyCreated, responses=ERRORS, summary="Create a key"
)
def create_key(
    tenant_id: TenantId, body: KeyCreate, request: Request, services: ServicesDep, principal: PlatformAdmin
) -> KeyCreated:
    """A new key of the tenant (scopes among submit, read, admin), its secret shown this once."""
    with session_scope(services.engine) as session:
        actor = actor_of(request, principal)
        row, secret = tenancy.add_key(session, actor, services.settings, tenant_id, body)
    return created(row, secret)


@router.get("/{tenant_id}/keys", response_model=KeyList, responses=ERRORS, summary="List a tenant's keys")
def list_keys(
    tenant_id: TenantId,
    session: SessionDep,
    principal: PlatformAdmin,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Cursor = None,
) -> KeyList:
    tenancy.get_tenant(session, tenant_id)
    return key_page(tenancy.list_keys(session, tenant_id, limit, cursor), limit)


@router.delete("/{tenant_id}/keys/{key_id}", response_model=KeyPublic, responses=ERRORS, summary="Revoke")
def revoke_key(
    tenant_id: TenantId, key_id: KeyId, request: Request, services: ServicesDep, principal: PlatformAdmin
) -> KeyPublic:
    with auth_change(services.engine, services.redis, services.keys) as session:
        row = tenancy.revoke_key(session, actor_of(request, principal), tenant_id, key_id)
    return KeyPublic.from_row(row)


@router.post(
    "/{tenant_id}/keys/{key_id}/rotate", response_model=KeyCreated, responses=ERRORS, summary="Rotate"
)
def rotate_key(
    tenant_id: TenantId,
    key_id: KeyId,
    request: Request,
    services: ServicesDep,
    principal: PlatformAdmin,
    body: KeyRotate | None = None,
) -> KeyCreated:
    grace_s = (body or KeyRotate()).grace_s
    with auth_change(services.engine, services.redis, services.keys) as session:
        actor = actor_of(request, principal)
        row, secret = tenancy.rotate_key(session, actor, tenant_id, key_id, grace_s)
    return created(row, secret)
