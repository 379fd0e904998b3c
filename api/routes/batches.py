"""Batches: OpenAI's Batch API (``input_file_id``) and a direct form (JSONL or JSON inline).

``POST /v1/batches`` takes three bodies, told apart by Content-Type and fields:

- ``application/json`` with ``input_file_id``: OpenAI's form (what the ``openai`` SDK sends);
- ``application/json`` with ``tier`` and ``jobs``: request bodies inline;
- ``application/jsonl`` or ``application/x-ndjson``: OpenAI Batch input lines, with ``tier``,
  ``endpoint``, ``completion_window``, ``callback_url``, ``skip_invalid_lines`` and
  ``metadata.<key>`` as query parameters.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ValidationError
from sqlmodel import Session

from api.batch_output import error_lines, output_lines
from api.batch_submission import BatchOrder, reader_for, submit_batch
from api.deps import Reader, ServicesDep, SessionDep, Submitter
from api.keys import Principal
from api.services import Services
from schemas import errors
from schemas.batches import (
    FINAL_BATCH_STATUSES,
    BatchCreate,
    BatchDirect,
    BatchEndpoint,
    BatchList,
    BatchPublic,
    CompletionWindow,
)
from schemas.tables import Batch
from workers import batch_store, batches
from workers.paging import cursor_row, split_page

router = APIRouter(prefix="/v1/batches", tags=["batches"])
Model = TypeVar("Model", bound=BaseModel)

ID_PATTERN = r"^[A-Za-z0-9_-]+$"
BatchId = Annotated[str, Path(max_length=64, pattern=ID_PATTERN, description="The batch's id, `batch_...`.")]
JSONL_TYPES = frozenset({"application/jsonl", "application/x-ndjson", "application/x-jsonlines"})
METADATA_PREFIX = "metadata."
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid input; `error.code` says which."},
    401: {"description": "Missing or unknown API key."},
    404: {"description": "No such batch (or input file) for this tenant."},
    413: {"description": "Over 200 MB or 50,000 lines."},
    415: {"description": "Content-Type is not JSON or JSONL."},
    422: {"description": "`invalid_batch_file`: `error.errors` lists bad lines by number."},
}
CREATE_BODY = {
    "requestBody": {
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/BatchCreate"},
                        {"$ref": "#/components/schemas/BatchDirect"},
                    ]
                }
            },
        },
        # The JSONL form (application/jsonl or application/x-ndjson) is described in the
        # operation's text: OpenAPI tools have no serializer for it.
    }
}


@router.post(
    "",
    response_model=BatchPublic,
    responses=ERRORS,
    summary="Create a batch",
    openapi_extra=CREATE_BODY,
)
async def create_batch(
    request: Request,
    services: ServicesDep,
    principal: Submitter,
    tier: Annotated[str | None, Query(max_length=64, description="JSONL form: the tier.")] = None,
    endpoint: Annotated[
        BatchEndpoint, Query(description="JSONL form: the lines' url.")
    ] = "/v1/chat/completions",
    completion_window: Annotated[CompletionWindow, Query(description="JSONL form.")] = "now",
    callback_url: Annotated[str | None, Query(max_length=2048, description="JSONL form.")] = None,
    skip_invalid_lines: Annotated[bool, Query(description="JSONL form.")] = False,
) -> BatchPublic:
    """Validate every line, then queue them all as one batch (``in_progress``); a bad line
    rejects the whole input with 422 unless ``skip_invalid_lines`` is set.

    The body is OpenAI's form (``input_file_id``), the direct JSON form (``tier`` and
    ``jobs``), or, with ``Content-Type: application/jsonl``, the batch input lines themselves
    with the options as query parameters (``metadata.<key>=value`` for metadata)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if media_type in JSONL_TYPES:
        metadata = _query_metadata(request)
        order = BatchOrder(endpoint, completion_window, tier, callback_url, metadata, skip_invalid_lines)
        return await run_in_threadpool(_create_from_jsonl, services, principal, order, body)
    if media_type != "application/json":
        raise errors.UnsupportedMediaType(
            "Send application/json (OpenAI's form or tier + jobs) or application/jsonl (batch lines)."
        )
    return await run_in_threadpool(_create_from_json, services, principal, body)


@router.get("", response_model=BatchList, responses=ERRORS, summary="List batches")
def list_batches(
    services: ServicesDep,
    session: SessionDep,
    principal: Reader,
    after: Annotated[str | None, Query(description="`last_id` of the page before.")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> BatchList:
    """The caller's batches, newest first."""
    cursor = cursor_row(session, Batch, principal.tenant_id, after, "after")
    rows = batch_store.list_batches(session, principal.tenant_id, limit, cursor)
    page, has_more, _ = split_page(rows, limit)
    data = [batches.public_batch(services.engine, row) for row in page]
    return BatchList(
        data=data,
        first_id=page[0].id if page else None,
        last_id=page[-1].id if page else None,
        has_more=has_more,
    )


@router.get("/{batch_id}", response_model=BatchPublic, responses=ERRORS, summary="Get a batch")
def get_batch(
    batch_id: BatchId, services: ServicesDep, session: SessionDep, principal: Reader
) -> BatchPublic:
    """Status, counts per job state, progress, ETA and cost so far."""
    return batches.public_batch(
        services.engine, batch_store.get_batch(session, principal.tenant_id, batch_id)
    )


@router.post(
    "/{batch_id}/cancel",
    response_model=BatchPublic,
    responses={**ERRORS, 409: {"description": "The batch already ended."}},
    summary="Cancel a batch",
)
def cancel_batch(batch_id: BatchId, services: ServicesDep, principal: Submitter) -> BatchPublic:
    """Cancel the batch's queued jobs at once; running ones finish, then it is ``cancelled``."""
    with Session(services.engine) as session:
        batch = batch_store.get_batch(session, principal.tenant_id, batch_id)
    with services.engine.begin() as connection:
        if batch_store.mark_cancelling(connection, batch_id):
            batch_store.cancel_queued(connection, batch_id)
        elif batch.status in FINAL_BATCH_STATUSES:
            raise errors.BatchNotCancelable(f"Batch {batch_id} is {batch.status}.", status=batch.status)
    services.outcomes.end_batch(batch_id)  # ends it now unless a job still runs
    return get_batch_public(services, principal, batch_id)


@router.get(
    "/{batch_id}/output",
    responses={**ERRORS, 200: {"content": {"application/jsonl": {}}}},
    summary="Stream a batch's output",
)
def batch_output(batch_id: BatchId, services: ServicesDep, principal: Reader) -> StreamingResponse:
    """Succeeded lines in OpenAI Batch output format, in input order (so far, while it runs)."""
    batch = _read(services, principal, batch_id)
    return StreamingResponse(output_lines(services.engine, batch), media_type="application/jsonl")


@router.get(
    "/{batch_id}/errors",
    responses={**ERRORS, 200: {"content": {"application/jsonl": {}}}},
    summary="Stream a batch's failed lines",
)
def batch_errors(batch_id: BatchId, services: ServicesDep, principal: Reader) -> StreamingResponse:
    """Failed, canceled and skipped invalid lines, in input order."""
    batch = _read(services, principal, batch_id)
    return StreamingResponse(error_lines(services.engine, batch), media_type="application/jsonl")


def get_batch_public(services: Services, principal: Principal, batch_id: str) -> BatchPublic:
    """The tenant's batch as the API shows it."""
    return batches.public_batch(services.engine, _read(services, principal, batch_id))


def _read(services: Services, principal: Principal, batch_id: str) -> Batch:
    with Session(services.engine, expire_on_commit=False) as session:
        return batch_store.get_batch(session, principal.tenant_id, batch_id)


def _create_from_jsonl(
    services: Services, principal: Principal, order: BatchOrder, body: bytes
) -> BatchPublic:
    parsed = reader_for(services, order).read_jsonl(body)
    return _submitted(services, principal, order, parsed)


def _create_from_json(services: Services, principal: Principal, body: bytes) -> BatchPublic:
    payload = _json_object(body)
    if "input_file_id" in payload:
        openai_form = _validated(BatchCreate, payload)
        order = BatchOrder(
            openai_form.endpoint,
            openai_form.completion_window,
            openai_form.tier,
            openai_form.callback_url,
            openai_form.metadata or {},
            openai_form.skip_invalid_lines,
            openai_form.input_file_id,
        )
        with Session(services.engine) as session:
            data = _input_file(session, principal, openai_form.input_file_id)
        return _create_from_jsonl(services, principal, order, data)
    direct = _validated(BatchDirect, payload)
    order = BatchOrder(
        direct.endpoint,
        direct.completion_window,
        direct.tier,
        direct.callback_url,
        direct.metadata or {},
        direct.skip_invalid_lines,
    )
    parsed = reader_for(services, order).read_bodies(direct.jobs)
    return _submitted(services, principal, order, parsed)


def _submitted(services: Services, principal: Principal, order: BatchOrder, parsed: Any) -> BatchPublic:
    batch = submit_batch(services, principal, order, parsed)
    return get_batch_public(services, principal, batch.id)


def _input_file(session: Session, principal: Principal, file_id: str) -> bytes:
    found = batch_store.get_file(session, principal.tenant_id, file_id)
    if found.purpose != "batch":
        raise errors.InvalidRequest(
            f"File {file_id} has purpose {found.purpose!r}; a batch input needs 'batch'."
        )
    return batch_store.file_bytes(session, file_id)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise errors.InvalidRequest("The body is not valid JSON.") from exc
    if not isinstance(payload, dict):
        raise errors.InvalidRequest("The body must be a JSON object.")
    return payload


def _validated(model: type[Model], payload: dict[str, Any]) -> Model:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False, include_context=False)) from exc


def _query_metadata(request: Request) -> dict[str, str]:
    """``metadata.<key>=value`` query parameters; at most 16, as OpenAI's metadata."""
    metadata = {
        name.removeprefix(METADATA_PREFIX): value
        for name, value in request.query_params.multi_items()
        if name.startswith(METADATA_PREFIX) and len(name) > len(METADATA_PREFIX)
    }
    if len(metadata) > 16:
        raise errors.InvalidRequest(
            "At most 16 metadata.<key> query parameters are allowed.", param="metadata"
        )
    return metadata
