"""Budgets: every tenant reads its own with their figures; a tenant admin manages its keys'
budgets; the platform admin manages any tenant's (docs/spend.md, "Budgets").

Every change is audited (``budget.created|updated|deleted``). Another tenant's budget ids
answer 404, as if they did not exist.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from api.deps import Admin, PlatformAdmin, Reader, ServicesDep, actor_of
from schemas.budgets import BudgetCreate, BudgetList, BudgetPublic, BudgetUpdate
from schemas.errors import PermissionDenied
from workers.budgets import manage
from workers.db import session_scope

router = APIRouter(tags=["budgets"])

ID = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "`invalid_request`: no limit, unknown tier or model, bad downgrade_tier."},
    401: {"description": "Missing or unknown API key."},
    403: {"description": "`insufficient_scope`: the key may not do this."},
    404: {"description": "No such budget, tenant or key (for this caller)."},
    422: {"description": "Malformed body."},
}


@router.get("/v1/budgets", response_model=BudgetList, responses=ERRORS, summary="Budgets and their figures")
def list_budgets(services: ServicesDep, principal: Reader) -> BudgetList:
    """The tenant's budgets and its keys', with this period's spent, reserved, remaining and reset."""
    with session_scope(services.engine) as session:
        rows = manage.tenant_budgets(session, principal.tenant_id)
        return BudgetList(data=manage.with_figures(session, services.budgets, rows))


@router.post(
    "/v1/budgets", status_code=201, response_model=BudgetPublic, responses=ERRORS, summary="Budget a key"
)
def create_key_budget(
    body: BudgetCreate, request: Request, services: ServicesDep, principal: Admin
) -> BudgetPublic:
    """A budget on one of the tenant's own keys (`api_key_id`); tenant budgets are the platform admin's."""
    if body.api_key_id is None:
        raise PermissionDenied("A tenant admin sets budgets on its keys: give api_key_id.", scope="platform")
    return _create(services, principal.tenant_id, body, request, principal)


@router.patch(
    "/v1/budgets/{budget_id}", response_model=BudgetPublic, responses=ERRORS, summary="Change a key budget"
)
def update_key_budget(
    budget_id: ID, body: BudgetUpdate, request: Request, services: ServicesDep, principal: Admin
) -> BudgetPublic:
    return _update(services, budget_id, body, request, principal, principal.tenant_id)


@router.delete("/v1/budgets/{budget_id}", status_code=204, responses=ERRORS, summary="Delete a key budget")
def delete_key_budget(budget_id: ID, request: Request, services: ServicesDep, principal: Admin) -> Response:
    return _delete(services, budget_id, request, principal, principal.tenant_id)


@router.post(
    "/v1/admin/tenants/{tenant_id}/budgets",
    status_code=201,
    response_model=BudgetPublic,
    responses=ERRORS,
    tags=["admin"],
    summary="Budget a tenant or its key",
)
def create_budget(
    tenant_id: ID, body: BudgetCreate, request: Request, services: ServicesDep, principal: PlatformAdmin
) -> BudgetPublic:
    return _create(services, tenant_id, body, request, principal)


@router.get(
    "/v1/admin/tenants/{tenant_id}/budgets", response_model=BudgetList, responses=ERRORS, tags=["admin"]
)
def list_tenant_budgets(tenant_id: ID, services: ServicesDep, principal: PlatformAdmin) -> BudgetList:
    """A tenant's budgets with their figures."""
    with session_scope(services.engine) as session:
        rows = manage.tenant_budgets(session, tenant_id)
        return BudgetList(data=manage.with_figures(session, services.budgets, rows))


@router.patch("/v1/admin/budgets/{budget_id}", response_model=BudgetPublic, responses=ERRORS, tags=["admin"])
def update_budget(
    budget_id: ID, body: BudgetUpdate, request: Request, services: ServicesDep, principal: PlatformAdmin
) -> BudgetPublic:
    return _update(services, budget_id, body, request, principal, None)


@router.delete("/v1/admin/budgets/{budget_id}", status_code=204, responses=ERRORS, tags=["admin"])
def delete_budget(
    budget_id: ID, request: Request, services: ServicesDep, principal: PlatformAdmin
) -> Response:
    return _delete(services, budget_id, request, principal, None)


def _create(
    services: ServicesDep, tenant_id: str, body: BudgetCreate, request: Request, principal: Any
) -> BudgetPublic:
    with session_scope(services.engine) as session:
        row = manage.create_budget(session, services.settings, tenant_id, body, actor_of(request, principal))
        public = BudgetPublic.from_row(row)
    services.budgets.directory.forget(tenant_id)
    return public


def _update(
    services: ServicesDep,
    budget_id: str,
    body: BudgetUpdate,
    request: Request,
    principal: Any,
    tenant_id: str | None,
) -> BudgetPublic:
    with session_scope(services.engine) as session:
        row = manage.get_budget(session, budget_id, tenant_id, key_level=tenant_id is not None)
        row = manage.update_budget(session, services.settings, row, body, actor_of(request, principal))
        public = BudgetPublic.from_row(row)
    services.budgets.directory.forget(public.tenant_id)
    return public


def _delete(
    services: ServicesDep, budget_id: str, request: Request, principal: Any, tenant_id: str | None
) -> Response:
    with session_scope(services.engine) as session:
        row = manage.get_budget(session, budget_id, tenant_id, key_level=tenant_id is not None)
        owner = row.tenant_id
        manage.delete_budget(session, row, actor_of(request, principal))
    services.budgets.directory.forget(owner)
    return Response(status_code=204)
