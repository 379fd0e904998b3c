"""The emulator's Files endpoints, as OpenAI's: upload (multipart), retrieve, read the content."""

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response, UploadFile

from infra.emulator.faults import error_body
from infra.emulator.provider import current_emulator

PURPOSES = frozenset({"batch", "batch_output", "assistants", "fine-tune", "vision", "user_data", "evals"})
MAX_FILE_BYTES = 200_000_000  # OpenAI's limit for a batch input file

router = APIRouter(prefix="/v1/files", tags=["files"])


def openai_error(status: int, message: str, param: str | None = None) -> Response:
    """An OpenAI-shaped error answer."""
    return Response(json.dumps(error_body(status, message, param)), status, media_type="application/json")


def not_found(file_id: str) -> Response:
    """OpenAI's 404 for an unknown file."""
    return openai_error(404, f"No such File object: {file_id}", "id")


@router.post("", response_model=None)
async def create_file(
    request: Request, file: UploadFile, purpose: Annotated[str, Form()]
) -> Response | dict[str, Any]:
    """POST /v1/files: upload a file (multipart ``file`` and ``purpose``)."""
    if purpose not in PURPOSES:
        return openai_error(400, f"Invalid purpose {purpose!r}.", "purpose")
    data = await file.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        return openai_error(400, f"The file is larger than {MAX_FILE_BYTES} bytes.", "file")
    if purpose == "batch" and not (file.filename or "").endswith(".jsonl"):
        return openai_error(400, "A batch input file must be a .jsonl file.", "file")
    stored = current_emulator(request).files.add(file.filename or "upload", purpose, data)
    return stored.describe()


@router.get("/{file_id}", response_model=None)
async def retrieve_file(request: Request, file_id: str) -> Response | dict[str, Any]:
    """GET /v1/files/{id}: the file object."""
    stored = current_emulator(request).files.get(file_id)
    return stored.describe() if stored else not_found(file_id)


@router.get("/{file_id}/content", response_model=None)
async def file_content(request: Request, file_id: str) -> Response:
    """GET /v1/files/{id}/content: the bytes."""
    stored = current_emulator(request).files.get(file_id)
    if stored is None:
        return not_found(file_id)
    return Response(stored.data, media_type="application/octet-stream")
