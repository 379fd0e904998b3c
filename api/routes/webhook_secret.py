"""The tenant's default webhook secret: it signs deliveries to jobs' one-off `callback_url`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from api import webhooks
from api.deps import Admin, ServicesDep, actor_of
from schemas.webhooks import RotateSecret, TenantSecretPublic

router = APIRouter(prefix="/v1/webhook-secret", tags=["webhooks"])
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or unknown API key."},
    403: {"description": "The key lacks the `admin` scope."},
}


@router.get("", response_model=TenantSecretPublic, responses=ERRORS, summary="The default secret")
def read_secret(services: ServicesDep, principal: Admin) -> TenantSecretPublic:
    """The `whsec_...` that signs deliveries to `callback_url`s, created on first read."""
    return TenantSecretPublic.model_validate(
        webhooks.read_tenant_secret(services, principal), from_attributes=True
    )


@router.post("/rotate", response_model=TenantSecretPublic, responses=ERRORS, summary="Rotate it")
def rotate_secret(
    request: Request, services: ServicesDep, principal: Admin, body: RotateSecret | None = None
) -> TenantSecretPublic:
    """A new default secret; the old one keeps signing, both signatures sent, for `grace_s`."""
    actor = actor_of(request, principal)
    row = webhooks.rotate_tenant_secret(services, principal, actor, body.grace_s if body else None)
    return TenantSecretPublic.model_validate(row, from_attributes=True)
