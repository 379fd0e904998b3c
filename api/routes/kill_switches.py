"""Kill switches: stop spending at once, for everyone (``/v1/admin/kill-switches``, platform
admin) or for one's own tenant (``/v1/kill-switches``, a tenant's admin key).

Both sets of routes share workers/kill_switches.py; a tenant admin's switches always carry
their tenant, and another tenant's switch ids answer 404.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from api.deps import Admin, PlatformAdmin, ServicesDep, SessionDep, actor_of
from api.keys import Principal
from api.services import Services
from schemas.kill_switches import KillSwitchCreate, KillSwitchList, KillSwitchPublic
from workers import kill_switches

admin_router = APIRouter(prefix="/v1/admin/kill-switches", tags=["kill switches"])
tenant_router = APIRouter(prefix="/v1/kill-switches", tags=["kill switches"])

SwitchId = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="`ks_...`")]
ShowLifted = Annotated[bool, Query(alias="all", description="Include lifted switches (history).")]
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "`unknown_tier`, `unknown_model` or `invalid_request` (e.g. an unknown provider)."},
    401: {"description": "Missing or unknown API key."},
    403: {"description": "The key lacks the scope (platform admin for /v1/admin/, admin otherwise)."},
    404: {"description": "No such switch, tenant or API key for this caller."},
    409: {"description": "`kill_switch_exists`: the same switch is already set (its id in `kill_switch`)."},
    422: {"description": "Malformed body."},
}
SET_DOC = """Stop every provider call that matches, on every worker, within a second: calls in
flight finish; matching queued jobs wait (they are not failed) and run soon after the switch
is lifted, or fail with `kill_switch` if `fail_queued`. Scopes: `all`, `tenant`, `api_key`,
`tier`, `model` (alias), `provider`; `tenant_id` narrows any scope to one tenant's calls."""
OWN_SET_DOC = (
    SET_DOC
    + """

For your own tenant only: `tenant_id` is yours, `all` means all of your calls, and an
`api_key` switch names one of your keys."""
)


def _set(services: Services, session: Any, request: Request, principal: Principal, body: KillSwitchCreate,
         tenant_admin: str | None) -> KillSwitchPublic:  # fmt: skip
    actor = actor_of(request, principal)
    row = kill_switches.set_switch(
        session, services.redis, services.keys, services.settings, actor, body, tenant_admin
    )
    return KillSwitchPublic.from_row(row)


def _lift(services: Services, session: Any, request: Request, principal: Principal, switch_id: str,
          tenant_admin: str | None) -> KillSwitchPublic:  # fmt: skip
    actor = actor_of(request, principal)
    row = kill_switches.lift_switch(session, services.redis, services.keys, actor, switch_id, tenant_admin)
    return KillSwitchPublic.from_row(row)


def _list(session: Any, show_lifted: bool, tenant_admin: str | None) -> KillSwitchList:
    rows = kill_switches.list_switches(session, show_lifted, tenant_admin)
    return KillSwitchList(data=[KillSwitchPublic.from_row(row) for row in rows])


@admin_router.post(
    "", status_code=201, response_model=KillSwitchPublic, responses=ERRORS, summary="Set", description=SET_DOC
)
def set_kill_switch(
    body: KillSwitchCreate,
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    principal: PlatformAdmin,
) -> KillSwitchPublic:
    return _set(services, session, request, principal, body, None)


@admin_router.get("", response_model=KillSwitchList, responses=ERRORS, summary="List")
def list_kill_switches(
    session: SessionDep, _: PlatformAdmin, show_lifted: ShowLifted = False
) -> KillSwitchList:
    """Every active switch, newest first; `?all=true` adds the lifted ones."""
    return _list(session, show_lifted, None)


@admin_router.delete("/{switch_id}", response_model=KillSwitchPublic, responses=ERRORS, summary="Lift")
def lift_kill_switch(
    switch_id: SwitchId,
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    principal: PlatformAdmin,
) -> KillSwitchPublic:
    """Lift a switch: waiting jobs run again within a few seconds. The row stays, as history."""
    return _lift(services, session, request, principal, switch_id, None)


@tenant_router.post(
    "",
    status_code=201,
    response_model=KillSwitchPublic,
    responses=ERRORS,
    summary="Set",
    description=OWN_SET_DOC,
)
def set_own_kill_switch(
    body: KillSwitchCreate, request: Request, services: ServicesDep, session: SessionDep, principal: Admin
) -> KillSwitchPublic:
    return _set(services, session, request, principal, body, principal.tenant_id)


@tenant_router.get("", response_model=KillSwitchList, responses=ERRORS, summary="List")
def list_own_kill_switches(
    session: SessionDep, principal: Admin, show_lifted: ShowLifted = False
) -> KillSwitchList:
    """The switches your tenant's admin keys set; `GET /v1/limits` also shows the platform's."""
    return _list(session, show_lifted, principal.tenant_id)


@tenant_router.delete("/{switch_id}", response_model=KillSwitchPublic, responses=ERRORS, summary="Lift")
def lift_own_kill_switch(
    switch_id: SwitchId, request: Request, services: ServicesDep, session: SessionDep, principal: Admin
) -> KillSwitchPublic:
    """Lift one of your tenant's switches (a platform admin's stop is not yours to lift: 404)."""
    return _lift(services, session, request, principal, switch_id, principal.tenant_id)
