"""The caller's event stream: job and batch final states as Server-Sent Events."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from api import sse
from api.deps import Reader, ServicesDep
from api.event_stream import parse_resume_id, tenant_events

router = APIRouter(prefix="/v1/events", tags=["events"])
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "`Last-Event-ID` is not an id of this stream (`invalid_last_event_id`)."},
    401: {"description": "Missing or unknown API key."},
}
EVENT_STREAM = {"content": {"text/event-stream": {}}, "description": "The event stream."}


@router.get("", response_class=StreamingResponse, responses={**ERRORS, 200: EVENT_STREAM}, summary="Events")
async def stream_events(
    services: ServicesDep,
    principal: Reader,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=64)] = None,
    since: Annotated[
        str | None,
        Query(max_length=64, description="Resume after this event id, as `Last-Event-ID`; `0` for all kept."),
    ] = None,
) -> StreamingResponse:
    """``job.succeeded``, ``job.failed``, ``job.canceled``, ``batch.completed``, ``batch.failed``
    and ``batch.canceled`` events of the caller's tenant, as they happen. Each SSE ``id`` can be
    sent back as ``Last-Event-ID`` to resume; an ``event: reset`` says events were lost."""
    resume_id = parse_resume_id(last_event_id if last_event_id is not None else since)
    key = services.keys.tenant_events(principal.tenant_id)
    settings = services.settings.streaming
    body = tenant_events(services.event_hub, key, principal.tenant_id, settings, resume_id)
    return sse.sse_response(body)
