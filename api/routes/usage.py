"""Usage and cost reports: ``GET /v1/usage`` (docs/spend.md, "Usage and cost reports")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session

from api.deps import ApiKeyAuth, ServicesDep
from api.keys import PLATFORM_SCOPE, Principal
from api.services import Services
from schemas.errors import NotFound, PermissionDenied
from schemas.tables import Tenant
from schemas.usage_reports import UsageReport
from workers.usage_report import make_query, run_report

router = APIRouter(prefix="/v1/usage", tags=["usage"])
_READ = ApiKeyAuth("read")
_PLATFORM = ApiKeyAuth(PLATFORM_SCOPE)
CSV_TYPE = "text/csv"


async def usage_reader(request: Request) -> Principal:
    """A key with the ``read`` scope, or a platform admin's key (which may name any tenant)."""
    try:
        return await _READ(request)
    except PermissionDenied:
        try:
            return await _PLATFORM(request)
        except PermissionDenied:
            pass
        raise


UsageReader = Annotated[Principal, Depends(usage_reader)]
GroupBy = Annotated[
    list[str],
    Query(
        description="Dimensions to group by, repeated or comma-separated: day, hour, tier, model, "
        "provider, api_key, priority, batch, metadata.<key>. Day and hour are UTC."
    ),
]


@router.get(
    "",
    response_model=UsageReport,
    response_model_by_alias=True,
    summary="Your usage and cost over a range, grouped",
    responses={200: {"content": {CSV_TYPE: {}}, "description": "JSON, or CSV with `Accept: text/csv`."}},
)
async def usage_report(
    request: Request,
    services: ServicesDep,
    principal: UsageReader,
    start: Annotated[
        datetime | None, Query(alias="from", description="Start, inclusive; default: this UTC month's.")
    ] = None,
    end: Annotated[
        datetime | None, Query(alias="to", description="End, exclusive; default: next month's.")
    ] = None,
    group_by: GroupBy = [],  # noqa: B006 - FastAPI copies query defaults
    tenant_id: Annotated[
        str | None,
        Query(
            max_length=40, pattern=r"^[A-Za-z0-9_-]+$", description="Platform admin keys only: whose usage."
        ),
    ] = None,
) -> Any:
    """Jobs that ended, provider calls, tokens, cost and cache savings of the caller's tenant over
    ``[from, to)``, one row per group. A time without a zone is UTC; a range spans at most 400
    days. ``Accept: text/csv`` answers CSV: a header row, then one line per group."""
    tenant = await run_in_threadpool(_report_tenant, services, principal, tenant_id)
    query = make_query(tenant, start, end, group_by)
    report = await run_in_threadpool(run_report, services.engine, query)
    if CSV_TYPE in request.headers.get("accept", ""):
        return Response(report.to_csv(), media_type=CSV_TYPE)
    return report


def _report_tenant(services: Services, principal: Principal, tenant_id: str | None) -> str:
    """The tenant the report is about: the caller's, or any for a platform admin."""
    if tenant_id is None or tenant_id == principal.tenant_id:
        return principal.tenant_id
    if not principal.is_platform_admin:
        raise PermissionDenied(
            "Only a platform admin key may ask for another tenant's usage.", scope=PLATFORM_SCOPE
        )
    with Session(services.engine) as session:
        if session.get(Tenant, tenant_id) is None:
            raise NotFound(f"No tenant {tenant_id!r}.", param="tenant_id")
    return tenant_id
