"""The per-call log: ``GET /v1/calls`` (docs/observability.md, "The call log")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.deps import Cursor, Reader, ServicesDep
from api.tenant_scope import TENANT_ID_PATTERN, named_tenant
from schemas.calls import CallList
from workers.call_log import CallFilter, checked, list_calls

router = APIRouter(prefix="/v1/calls", tags=["calls"])
_NAME = r"^[^\x00]*$"


@router.get("", response_model=CallList, summary="The call log: provider calls and cache answers")
def call_log(
    services: ServicesDep,
    principal: Reader,
    start: Annotated[datetime | None, Query(alias="from", description="Inclusive; no zone: UTC.")] = None,
    end: Annotated[datetime | None, Query(alias="to", description="Exclusive; no zone: UTC.")] = None,
    tier: Annotated[str | None, Query(max_length=64, pattern=_NAME)] = None,
    model: Annotated[str | None, Query(max_length=128, pattern=_NAME, description="A model alias.")] = None,
    provider: Annotated[str | None, Query(max_length=64, pattern=_NAME)] = None,
    status: Annotated[
        str | None,
        Query(
            max_length=64,
            pattern=r"^[a-z_]+$",
            description="ok, error (any failed call), or an error code such as rate_limited.",
        ),
    ] = None,
    job_id: Annotated[str | None, Query(max_length=40, pattern=TENANT_ID_PATTERN)] = None,
    cache: Annotated[
        Literal["exact", "semantic", "none"] | None,
        Query(description="exact or semantic: only that cache's answers; none: only provider calls."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Cursor = None,
    tenant_id: Annotated[
        str | None,
        Query(max_length=40, pattern=TENANT_ID_PATTERN, description="Platform admin keys only: whose calls."),
    ] = None,
) -> CallList:
    """Every provider call of the caller's tenant (attempts that failed and were retried
    included) and every job a cache answered without one, newest first."""
    tenant = named_tenant(services.engine, principal, tenant_id) or principal.tenant_id
    where = CallFilter(tenant, start, end, tier, model, provider, status, job_id, cache)
    page, has_more, next_cursor = list_calls(services.engine, checked(where), limit, cursor)
    return CallList(data=page, has_more=has_more, next_cursor=next_cursor)
