"""Webhook endpoints: URLs that receive signed events, each with its own rotatable secret."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from api import webhooks
from api.deps import Admin, Cursor, Reader, ServicesDep, SessionDep, actor_of
from schemas.webhooks import EndpointCreate, EndpointList, EndpointPublic, EndpointUpdate, RotateSecret
from workers.paging import split_page

router = APIRouter(prefix="/v1/webhook-endpoints", tags=["webhooks"])

ID_PATTERN = r"^[A-Za-z0-9_-]+$"
EndpointId = Annotated[
    str, Path(max_length=64, pattern=ID_PATTERN, description="The endpoint's id, `we_...`.")
]
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "`unsafe_callback_url` (SSRF guard), `invalid_callback_url`, `unknown_event_type`."},
    401: {"description": "Missing or unknown API key."},
    403: {"description": "The key lacks the scope (`admin` to write, `read` to read)."},
    404: {"description": "No such endpoint for this tenant."},
    422: {"description": "Malformed body."},
}


@router.post("", status_code=201, response_model=EndpointPublic, responses=ERRORS, summary="Register")
def create_endpoint(
    body: EndpointCreate, request: Request, services: ServicesDep, principal: Admin
) -> EndpointPublic:
    """Register a URL for the event types it wants (none: all). The answer shows the endpoint's
    signing secret `whsec_...` this once; keep it to verify deliveries."""
    row = webhooks.create_endpoint(services, principal, actor_of(request, principal), body)
    return EndpointPublic.from_row(row, show_secret=True)


@router.get("", response_model=EndpointList, responses=ERRORS, summary="List endpoints")
def list_endpoints(
    session: SessionDep,
    principal: Reader,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Cursor = None,
) -> EndpointList:
    """The caller's endpoints, newest first; `enabled` false with `disabled_reason` when disabled."""
    rows = webhooks.list_endpoints(session, principal.tenant_id, limit, cursor)
    page, has_more, next_cursor = split_page(rows, limit)
    return EndpointList(
        data=[EndpointPublic.from_row(row) for row in page], has_more=has_more, next_cursor=next_cursor
    )


@router.get("/{endpoint_id}", response_model=EndpointPublic, responses=ERRORS, summary="Get an endpoint")
def get_endpoint(endpoint_id: EndpointId, session: SessionDep, principal: Reader) -> EndpointPublic:
    return EndpointPublic.from_row(webhooks.get_endpoint(session, principal.tenant_id, endpoint_id))


@router.patch("/{endpoint_id}", response_model=EndpointPublic, responses=ERRORS, summary="Change an endpoint")
def update_endpoint(
    endpoint_id: EndpointId, body: EndpointUpdate, request: Request, services: ServicesDep, principal: Admin
) -> EndpointPublic:
    """Change the fields given; `enabled: true` re-enables a disabled endpoint."""
    actor = actor_of(request, principal)
    return EndpointPublic.from_row(webhooks.update_endpoint(services, principal, actor, endpoint_id, body))


@router.delete("/{endpoint_id}", status_code=204, responses=ERRORS, summary="Delete an endpoint")
def delete_endpoint(
    endpoint_id: EndpointId, request: Request, services: ServicesDep, principal: Admin
) -> Response:
    """Stop sending to it; its pending deliveries fail at their next attempt."""
    webhooks.delete_endpoint(services, principal, actor_of(request, principal), endpoint_id)
    return Response(status_code=204)


@router.post(
    "/{endpoint_id}/rotate-secret",
    response_model=EndpointPublic,
    responses=ERRORS,
    summary="Rotate the secret",
)
def rotate_secret(
    endpoint_id: EndpointId,
    request: Request,
    services: ServicesDep,
    principal: Admin,
    body: RotateSecret | None = None,
) -> EndpointPublic:
    """A new secret, shown this once. The old one keeps signing for `grace_s` (default 24 h):
    meanwhile every delivery carries both signatures, so receivers can switch at leisure."""
    grace = body.grace_s if body else None
    row = webhooks.rotate_endpoint_secret(
        services, principal, actor_of(request, principal), endpoint_id, grace
    )
    return EndpointPublic.from_row(row, show_secret=True)
