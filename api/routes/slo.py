"""Service level objectives: ``GET /v1/slo`` (docs/observability.md, "SLOs and alerts")."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import Reader, ServicesDep
from api.tenant_scope import TENANT_ID_PATTERN, named_tenant
from schemas.slo import SloReport
from workers.slo import slo_report

router = APIRouter(prefix="/v1/slo", tags=["slo"])


@router.get("", response_model=SloReport, summary="Each tier's objectives and error budget burn")
def slo(
    services: ServicesDep,
    principal: Reader,
    tenant_id: Annotated[
        str | None,
        Query(
            max_length=40, pattern=TENANT_ID_PATTERN, description="Platform admin keys: one tenant's jobs."
        ),
    ] = None,
) -> SloReport:
    """The objectives are the configuration's, per tier; the figures are over the caller's
    tenant's jobs, or over every tenant's for a platform admin key (or the one it names)."""
    tenant = named_tenant(services.engine, principal, tenant_id)
    if tenant is None and not principal.is_platform_admin:
        tenant = principal.tenant_id
    return slo_report(services.engine, services.settings.tiers, tenant)
