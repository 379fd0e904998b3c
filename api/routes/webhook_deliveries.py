"""Webhook deliveries: each event for each endpoint, its attempts, the dead letter, redelivery."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request

from api import webhooks
from api.deps import Admin, Cursor, Reader, ServicesDep, SessionDep, actor_of
from schemas.webhooks import BulkRedeliver, DeliveryList, DeliveryPublic, RedeliverResult
from workers.paging import split_page

router = APIRouter(prefix="/v1/webhook-deliveries", tags=["webhooks"])

ID_PATTERN = r"^[A-Za-z0-9_-]+$"
DeliveryId = Annotated[
    str, Path(max_length=64, pattern=ID_PATTERN, description="The delivery's id, `whd_...`.")
]
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or unknown API key."},
    403: {"description": "The key lacks the scope (`admin` to redeliver, `read` to read)."},
    404: {"description": "No such delivery (or endpoint) for this tenant."},
    409: {"description": "`delivery_pending` (still being tried) or `webhook_endpoint_disabled`."},
    422: {"description": "Malformed body or query."},
}


@router.get("", response_model=DeliveryList, responses=ERRORS, summary="List deliveries")
def list_deliveries(
    session: SessionDep,
    principal: Reader,
    status: Literal["pending", "succeeded", "failed"] | None = Query(
        None, description="`failed` lists the dead letter."
    ),
    endpoint_id: Annotated[str | None, Query(max_length=64, pattern=ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Cursor = None,
) -> DeliveryList:
    """The caller's deliveries, newest first."""
    rows = webhooks.list_deliveries(session, principal.tenant_id, limit, cursor, status, endpoint_id)
    page, has_more, next_cursor = split_page(rows, limit)
    return DeliveryList(
        data=[DeliveryPublic.from_row(row) for row in page], has_more=has_more, next_cursor=next_cursor
    )


@router.post("/redeliver", response_model=RedeliverResult, responses=ERRORS, summary="Redeliver a range")
def redeliver_range(
    body: BulkRedeliver, request: Request, services: ServicesDep, principal: Admin
) -> RedeliverResult:
    """Send again an endpoint's ended deliveries (`failed` by default) created in
    `[since, until)`, each with its original `webhook-id` and a fresh retry schedule."""
    ids = webhooks.redeliver_range(services, principal, actor_of(request, principal), body)
    return RedeliverResult(redelivered=len(ids), delivery_ids=ids)


@router.get("/{delivery_id}", response_model=DeliveryPublic, responses=ERRORS, summary="Get a delivery")
def get_delivery(delivery_id: DeliveryId, session: SessionDep, principal: Reader) -> DeliveryPublic:
    return DeliveryPublic.from_row(webhooks.get_delivery(session, principal.tenant_id, delivery_id))


@router.post(
    "/{delivery_id}/redeliver", response_model=DeliveryPublic, responses=ERRORS, summary="Redeliver one"
)
def redeliver(
    delivery_id: DeliveryId, request: Request, services: ServicesDep, principal: Admin
) -> DeliveryPublic:
    """Send an ended delivery again at once, same `webhook-id`, with a fresh retry schedule."""
    return DeliveryPublic.from_row(
        webhooks.redeliver(services, principal, actor_of(request, principal), delivery_id)
    )
