"""Files and batches as the API shows them: OpenAI's shapes, plus Switchyard's extras."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.tables import Batch, File

BatchStatus = Literal[
    "validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling", "cancelled"
]
FINAL_BATCH_STATUSES = frozenset({"failed", "completed", "expired", "cancelled"})
# The lines a batch may hold: an OpenAI Batch line's `url` is one of these.
BATCH_ENDPOINTS = ("/v1/chat/completions", "/v1/embeddings")
BatchEndpoint = Literal["/v1/chat/completions", "/v1/embeddings"]
# 24h: the jobs may wait for the provider batch lane and off-peak; now: they run at once.
CompletionWindow = Literal["24h", "now"]


def unix(moment: datetime | None) -> int | None:
    """Seconds since the epoch, as OpenAI's objects give times."""
    return int(moment.timestamp()) if moment is not None else None


class FileObject(BaseModel):
    """OpenAI's File object."""

    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: Literal["uploaded", "processed", "error"] = "processed"
    expires_at: int | None = None
    status_details: str | None = None

    @classmethod
    def from_row(cls, row: File) -> FileObject:
        return cls(
            id=row.id,
            bytes=row.bytes,
            created_at=unix(row.created_at) or 0,
            filename=row.filename,
            purpose=row.purpose,
        )


class BatchCreate(BaseModel):
    """The OpenAI form of ``POST /v1/batches``: the lines are an uploaded file."""

    model_config = ConfigDict(extra="forbid")

    input_file_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    endpoint: BatchEndpoint
    completion_window: CompletionWindow = "24h"
    metadata: dict[str, str] | None = Field(None, max_length=16)
    output_expires_after: dict[str, Any] | None = Field(None, description="Accepted; outputs do not expire.")
    # Switchyard extras, for clients that can send them (the SDK's `extra_body`).
    tier: str | None = Field(None, min_length=1, max_length=64)
    callback_url: str | None = None
    skip_invalid_lines: bool = False


class BatchDirect(BaseModel):
    """The direct JSON form of ``POST /v1/batches``: job request bodies inline."""

    model_config = ConfigDict(extra="forbid")

    tier: str = Field(min_length=1, max_length=64)
    jobs: list[dict[str, Any]] = Field(min_length=1)
    endpoint: BatchEndpoint = "/v1/chat/completions"
    callback_url: str | None = None
    metadata: dict[str, str] | None = Field(None, max_length=16)
    completion_window: CompletionWindow = "now"
    skip_invalid_lines: bool = False


class BatchRequestCounts(BaseModel):
    """OpenAI's counts: ``failed`` holds failed jobs and skipped invalid lines."""

    total: int
    completed: int
    failed: int


class BatchJobCounts(BaseModel):
    """Jobs per state, plus the input lines skipped as invalid; they add up to the total."""

    queued: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    canceled: int = 0
    invalid: int = 0


class BatchLineError(BaseModel):
    """One invalid input line: its 1-based number, its code and why."""

    line: int
    code: str
    message: str
    custom_id: str | None = None


class BatchErrors(BaseModel):
    object: Literal["list"] = "list"
    data: list[BatchLineError]


class BatchPublic(BaseModel):
    """OpenAI's Batch object, with ``tier``, ``counts``, ``progress``, ``eta_s`` and ``cost_usd``."""

    id: str
    object: Literal["batch"] = "batch"
    endpoint: str
    errors: BatchErrors | None = None
    input_file_id: str | None
    completion_window: str
    status: BatchStatus
    output_file_id: str | None
    error_file_id: str | None
    created_at: int
    in_progress_at: int | None
    expires_at: int | None
    finalizing_at: int | None
    completed_at: int | None
    failed_at: int | None
    expired_at: int | None
    cancelling_at: int | None
    cancelled_at: int | None
    request_counts: BatchRequestCounts
    metadata: dict[str, Any] | None
    tier: str
    callback_url: str | None
    counts: BatchJobCounts
    progress: float = Field(description="Share of the lines that reached a final state, 0..1.")
    eta_s: float | None = Field(description="Seconds to go at the throughput seen so far; none if unknown.")
    cost_usd: float

    @classmethod
    def from_row(
        cls, batch: Batch, counts: BatchJobCounts, cost_usd: float, eta_s: float | None
    ) -> BatchPublic:
        """The public view of a batch row and its jobs' counts."""
        done = counts.succeeded + counts.failed + counts.canceled + counts.invalid
        timestamps: dict[str, Any] = {name: unix(getattr(batch, name)) for name in TIMESTAMPS}
        return cls(
            id=batch.id,
            endpoint=batch.endpoint,
            errors=_errors(batch),
            input_file_id=batch.input_file_id,
            completion_window=batch.completion_window,
            status=batch.status,  # type: ignore[arg-type]
            output_file_id=batch.output_file_id,
            error_file_id=batch.error_file_id,
            created_at=unix(batch.created_at) or 0,
            **timestamps,
            request_counts=BatchRequestCounts(
                total=batch.total, completed=counts.succeeded, failed=counts.failed + counts.invalid
            ),
            metadata=batch.batch_metadata or None,
            tier=batch.tier,
            callback_url=batch.callback_url,
            counts=counts,
            progress=round(done / batch.total, 4) if batch.total else 1.0,
            eta_s=eta_s,
            cost_usd=round(cost_usd, 8),
        )


TIMESTAMPS = (
    "in_progress_at",
    "expires_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
)


def _errors(batch: Batch) -> BatchErrors | None:
    if not batch.invalid_lines:
        return None
    shown = batch.invalid_lines[:100]
    return BatchErrors(data=[BatchLineError.model_validate(entry) for entry in shown])


class BatchList(BaseModel):
    """A page of batches, newest first, as OpenAI lists them (``after`` = ``last_id``)."""

    object: Literal["list"] = "list"
    data: list[BatchPublic]
    first_id: str | None
    last_id: str | None
    has_more: bool
