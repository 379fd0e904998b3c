"""Whose rows a read-only report shows: the caller's tenant, or the one a platform admin names.

``GET /v1/calls`` and ``GET /v1/slo`` share it; a tenant key naming another tenant is refused
(403), and an unknown tenant is a 404 only a platform admin can get.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.keys import PLATFORM_SCOPE, Principal
from schemas.errors import NotFound, PermissionDenied
from schemas.tables import Tenant

TENANT_ID_PATTERN = r"^[A-Za-z0-9_-]+$"


def named_tenant(engine: Engine, principal: Principal, tenant_id: str | None) -> str | None:
    """``tenant_id`` when the caller may read it (its own, or any for a platform admin); None when
    it named none."""
    if tenant_id is None or tenant_id == principal.tenant_id:
        return tenant_id
    if not principal.is_platform_admin:
        raise PermissionDenied(
            "Only a platform admin key may read another tenant's figures.", scope=PLATFORM_SCOPE
        )
    with Session(engine) as session:
        if session.get(Tenant, tenant_id) is None:
            raise NotFound(f"No tenant {tenant_id!r}.", param="tenant_id")
    return tenant_id
