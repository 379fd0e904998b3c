"""Files, as OpenAI's Files API: upload a batch input, read a file and its content.

A batch's output and error files are generated from its job rows when read (api/batch_output.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, UploadFile
from fastapi.responses import Response, StreamingResponse
from sqlmodel import Session

from api.batch_output import error_lines, output_lines
from api.deps import Reader, ServicesDep, SessionDep, Submitter
from api.services import Services
from schemas import errors
from schemas.batches import FINAL_BATCH_STATUSES, FileObject
from schemas.tables import Batch, File, FileContent, utcnow
from workers import batch_store

router = APIRouter(prefix="/v1/files", tags=["files"])

FileId = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="`file-...`")]
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Unsupported purpose."},
    401: {"description": "Missing or unknown API key."},
    404: {"description": "No such file for this tenant."},
    413: {"description": "Over the upload limit (200 MB)."},
}
READ_CHUNK = 1 << 20
# The multipart body, as OpenAI documents it: a file and its purpose, nothing else.
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "purpose"],
                    "additionalProperties": False,
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "purpose": {"type": "string", "enum": ["batch"]},
                    },
                }
            }
        },
    }
}


@router.post(
    "", response_model=FileObject, responses=ERRORS, summary="Upload a file", openapi_extra=UPLOAD_BODY
)
def upload_file(
    file: UploadFile,
    purpose: Annotated[str, Form(max_length=32)],
    services: ServicesDep,
    principal: Submitter,
) -> FileObject:
    """Store a batch input file (``purpose=batch``); it is checked when a batch uses it."""
    if purpose != "batch":
        raise errors.InvalidRequest(
            f"purpose {purpose[:32]!r} is not supported; use 'batch'.", param="purpose"
        )
    data = _read_all(file, services.settings.max_batch_bytes)
    row = File(
        id=batch_store.new_file_id(),
        tenant_id=principal.tenant_id,
        purpose=purpose,
        filename=(file.filename or "upload.jsonl")[:512],
        bytes=len(data),
        created_at=utcnow(),
    )
    with Session(services.engine, expire_on_commit=False) as session:
        session.add(row)
        session.flush()  # the file row first: the content's foreign key names it
        session.add(FileContent(file_id=row.id, data=data))
        session.commit()
    return FileObject.from_row(row)


@router.get("/{file_id}", response_model=FileObject, responses=ERRORS, summary="Get a file")
def get_file(file_id: FileId, services: ServicesDep, session: SessionDep, principal: Reader) -> FileObject:
    """The file's metadata; a generated file's size is counted on its first read after its
    batch ended (it is generated on read, so its size is not known before)."""
    found = batch_store.get_file(session, principal.tenant_id, file_id)
    batch = session.get(Batch, found.batch_id) if found.batch_id else None
    if batch is not None and found.bytes == 0 and batch.status in FINAL_BATCH_STATUSES:
        found.bytes = sum(len(chunk) for chunk in _generated(services, batch, file_id))
        session.add(found)
        session.commit()
    return FileObject.from_row(found)


@router.get(
    "/{file_id}/content",
    responses={**ERRORS, 200: {"content": {"application/jsonl": {}}}},
    summary="Get a file's content",
)
def get_file_content(file_id: FileId, services: ServicesDep, principal: Reader) -> Response:
    """An uploaded file's bytes, or a batch's output or error JSONL (streamed)."""
    with Session(services.engine, expire_on_commit=False) as session:
        found = batch_store.get_file(session, principal.tenant_id, file_id)
        batch = session.get(Batch, found.batch_id) if found.batch_id else None
        if batch is None:
            return Response(batch_store.file_bytes(session, file_id), media_type="application/jsonl")
    return StreamingResponse(_generated(services, batch, file_id), media_type="application/jsonl")


def _generated(services: Services, batch: Batch, file_id: str) -> Iterator[bytes]:
    if file_id == batch.error_file_id:
        return error_lines(services.engine, batch)
    return output_lines(services.engine, batch)


def _read_all(upload: UploadFile, limit: int) -> bytes:
    chunks, size = [], 0
    while chunk := upload.file.read(READ_CHUNK):
        size += len(chunk)
        if size > limit:
            raise errors.PayloadTooLarge(f"The file is over {limit} bytes.", max_bytes=limit)
        chunks.append(chunk)
    return b"".join(chunks)
