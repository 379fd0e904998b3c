"""The caller's tenant's API keys: create (the secret shown once), list, revoke, rotate.

A tenant's ``admin`` keys manage their own tenant's keys; another tenant's key ids answer 404.
The platform admin manages any tenant's keys under ``/v1/admin/tenants/{id}/keys``
(api/routes/admin_tenants.py). Every change writes an audit entry (api/tenancy.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from api import tenancy
from api.deps import Admin, Cursor, ServicesDep, SessionDep, actor_of
from api.principal_cache import auth_change
from schemas.admin import KeyCreate, KeyCreated, KeyList, KeyPublic, KeyRotate
from workers.db import session_scope
from workers.paging import split_page

router = APIRouter(prefix="/v1/keys", tags=["keys"])

KeyId = Annotated[
    str, Path(max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="The key's id, `key_...`.")
]
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "`unknown_tier` in `allowed_tiers`, `expires_at` in the past."},
    401: {"description": "Missing, unknown, revoked or expired API key."},
    403: {"description": "The key lacks the `admin` scope, or its tenant is disabled."},
    404: {"description": "No such key in this tenant."},
    409: {"description": "`key_not_active`: a revoked or expired key cannot be rotated."},
    422: {"description": "Malformed body (unknown field, scope outside submit/read/admin...)."},
}


def key_page(rows: list[Any], limit: int) -> KeyList:
    """A page of keys as the API shows it."""
    page, has_more, next_cursor = split_page(rows, limit)
    return KeyList(data=[KeyPublic.from_row(row) for row in page], has_more=has_more, next_cursor=next_cursor)


def created(row: Any, secret: str) -> KeyCreated:
    """A new key with its secret."""
    return KeyCreated(**KeyPublic.from_row(row).model_dump(), secret=secret)


@router.post("", status_code=201, response_model=KeyCreated, responses=ERRORS, summary="Create a key")
def create_key(body: KeyCreate, request: Request, services: ServicesDep, principal: Admin) -> KeyCreated:
    """A new key of the caller's tenant; the answer holds its secret `sy_...` this once."""
    with session_scope(services.engine) as session:
        actor = actor_of(request, principal)
        row, secret = tenancy.add_key(session, actor, services.settings, principal.tenant_id, body)
    return created(row, secret)


@router.get("", response_model=KeyList, responses=ERRORS, summary="List keys")
def list_keys(
    session: SessionDep,
    principal: Admin,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Cursor = None,
) -> KeyList:
    """The tenant's keys, revoked ones too, newest first: prefix, scopes, last use, expiry."""
    return key_page(tenancy.list_keys(session, principal.tenant_id, limit, cursor), limit)


@router.get("/{key_id}", response_model=KeyPublic, responses=ERRORS, summary="Get a key")
def get_key(key_id: KeyId, session: SessionDep, principal: Admin) -> KeyPublic:
    return KeyPublic.from_row(tenancy.get_key(session, principal.tenant_id, key_id))


@router.delete("/{key_id}", response_model=KeyPublic, responses=ERRORS, summary="Revoke a key")
def revoke_key(key_id: KeyId, request: Request, services: ServicesDep, principal: Admin) -> KeyPublic:
    """Revoke the key: every API process refuses it (401) within a second."""
    with auth_change(services.engine, services.redis, services.keys) as session:
        row = tenancy.revoke_key(session, actor_of(request, principal), principal.tenant_id, key_id)
    return KeyPublic.from_row(row)


@router.post("/{key_id}/rotate", response_model=KeyCreated, responses=ERRORS, summary="Rotate a key")
def rotate_key(
    key_id: KeyId, request: Request, services: ServicesDep, principal: Admin, body: KeyRotate | None = None
) -> KeyCreated:
    """A new key (secret shown once) with the same name, scopes and tiers; the old one keeps
    working for `grace_s` (default 24 h, at most 7 days), then gets 401."""
    grace_s = (body or KeyRotate()).grace_s
    with auth_change(services.engine, services.redis, services.keys) as session:
        actor = actor_of(request, principal)
        row, secret = tenancy.rotate_key(session, actor, principal.tenant_id, key_id, grace_s)
    return created(row, secret)
