"""Known queries: requests the tenant wants precomputed off-peak and served from the cache."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from api import known_queries
from api.deps import Cursor, Reader, ServicesDep, SessionDep, Submitter
from schemas.known_queries import (
    KnownQueryCreate,
    KnownQueryList,
    KnownQueryPublic,
    KnownQueryUpdate,
    SuggestionList,
)
from workers.cache.misses import KEEP_HOURS
from workers.paging import split_page

router = APIRouter(prefix="/v1/known-queries", tags=["known queries"])

ID_PATTERN = r"^[A-Za-z0-9_-]+$"
KnownQueryId = Annotated[
    str, Path(max_length=64, pattern=ID_PATTERN, description="The known query's id, `kq_...`.")
]
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid input; `error.code` says which (`invalid_schedule` names the field)."},
    401: {"description": "Missing or unknown API key."},
    403: {"description": "The key lacks the scope (`submit` to write, `read` to read)."},
    404: {"description": "No such known query for this tenant."},
    409: {"description": "`known_query_exists`: the request is already registered on this tier."},
    422: {"description": "Malformed body."},
}


@router.post("", status_code=201, response_model=KnownQueryPublic, responses=ERRORS, summary="Register")
def create_known_query(
    body: KnownQueryCreate, services: ServicesDep, principal: Submitter
) -> KnownQueryPublic:
    """Register a request to precompute: beat runs it in its off-peak window at the
    `precompute` priority (spare capacity only) and stores the answer in the exact cache for
    `ttl_s`, refreshing it before it expires. It is due at once, so the first run is at the
    next scan inside the window."""
    return KnownQueryPublic.from_row(known_queries.create(services, principal, body))


@router.get("", response_model=KnownQueryList, responses=ERRORS, summary="List known queries")
def list_known_queries(
    session: SessionDep,
    principal: Reader,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Cursor = None,
) -> KnownQueryList:
    """The caller's known queries, newest first."""
    page, has_more, next_cursor = split_page(
        known_queries.list_page(session, principal.tenant_id, limit, cursor), limit
    )
    return KnownQueryList(
        data=[KnownQueryPublic.from_row(row) for row in page], has_more=has_more, next_cursor=next_cursor
    )


@router.get("/suggestions", response_model=SuggestionList, responses=ERRORS, summary="Most missed requests")
def suggest_known_queries(
    services: ServicesDep,
    principal: Reader,
    hours: Annotated[int, Query(ge=1, le=KEEP_HOURS, description="The recent window, in hours.")] = 24,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> SuggestionList:
    """The requests that missed the exact cache most in the last `hours`, with their counts and
    the savings a cached answer would have brought; POST a row's `tier` and `request` to
    register it. `known_query_id` is set when it is registered already."""
    rows = known_queries.suggestions(services, principal, hours, limit)
    return SuggestionList.model_validate({"hours": hours, "data": rows})


@router.get("/{query_id}", response_model=KnownQueryPublic, responses=ERRORS, summary="Get a known query")
def get_known_query(query_id: KnownQueryId, session: SessionDep, principal: Reader) -> KnownQueryPublic:
    return KnownQueryPublic.from_row(known_queries.get(session, principal.tenant_id, query_id))


@router.patch(
    "/{query_id}", response_model=KnownQueryPublic, responses=ERRORS, summary="Change a known query"
)
def update_known_query(
    query_id: KnownQueryId, body: KnownQueryUpdate, services: ServicesDep, principal: Submitter
) -> KnownQueryPublic:
    """Change the fields given (`null` puts a window, time zone or TTL back to its default).
    A change of what runs or when, or enabling it, makes it due at once."""
    return KnownQueryPublic.from_row(known_queries.update(services, principal, query_id, body))


@router.delete("/{query_id}", status_code=204, responses=ERRORS, summary="Delete a known query")
def delete_known_query(query_id: KnownQueryId, services: ServicesDep, principal: Submitter) -> Response:
    """Stop precomputing it; an answer already cached stays until its TTL ends."""
    known_queries.delete(services, principal, query_id)
    return Response(status_code=204)
