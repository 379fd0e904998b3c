"""Job request and response models of the public API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
)

from schemas.openai import ChatRequest, EmbeddingRequest
from schemas.tables import Job

JobStatus = Literal["queued", "running", "succeeded", "failed", "canceled"]
JobKind = Literal["chat", "embedding"]
JobRequest = ChatRequest | EmbeddingRequest
# The request body each kind of job carries.
REQUEST_MODELS: dict[str, type[ChatRequest] | type[EmbeddingRequest]] = {
    "chat": ChatRequest,
    "embedding": EmbeddingRequest,
}
FINAL_STATUSES = frozenset({"succeeded", "failed", "canceled"})


class JobCreate(BaseModel):
    """The body of ``POST /v1/jobs``."""

    model_config = ConfigDict(extra="forbid")

    tier: str = Field(min_length=1, max_length=64, examples=["small"])
    kind: JobKind = Field(
        "chat",
        description="chat: `request` is a chat.completions body; embedding: an embeddings body.",
    )
    request: JobRequest
    callback_url: str | None = Field(None, description="Called with the job when it ends.")
    cache: Literal["exact", "semantic", "off"] | None = Field(
        None,
        description="exact: identical requests share a result; semantic: also close paraphrases; "
        "off: always call the model. Default: the tier's; off when temperature > 0.",
    )
    cache_ttl: int | None = Field(
        None, gt=0, le=30 * 86_400, description="Seconds the result stays cached; default: the tier's."
    )
    priority: Literal["live", "batch", "precompute"] = Field(
        "live",
        description="live: first in line; batch: leaves a reserve of each limit for live; "
        "precompute: only spare capacity.",
    )
    completion_window: Literal["24h"] | None = Field(
        None,
        description="24h: a batch-priority job may wait for a provider's Batch API at its lower price "
        "(docs/provider-batches.md).",
    )
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("request", mode="wrap")
    @classmethod
    def _request_of_kind(cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
        # Validate against the kind's body only, so errors name that body's fields.
        return parse_request(info.data.get("kind", "chat"), value)


def parse_request(kind: str, value: Any) -> JobRequest:
    """The request body of a job of ``kind``, validated (a stored row's or a submitted one)."""
    model = REQUEST_MODELS.get(kind, ChatRequest)
    if isinstance(value, BaseModel) and not isinstance(value, model):
        raise ValueError(f"a job of kind {kind!r} needs a {model.__name__} body")
    return value if isinstance(value, model) else model.model_validate(value)


class JobUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class JobError(BaseModel):
    code: str
    message: str


class JobAttempt(BaseModel):
    """One provider call made for the job."""

    model_config = ConfigDict(extra="allow")

    attempt: int
    model: str
    provider: str
    outcome: str
    latency_ms: float


class JobPublic(BaseModel):
    """A job as the API shows it."""

    id: str
    object: Literal["job"] = "job"
    kind: JobKind = "chat"
    tier: str
    priority: str
    status: JobStatus
    request: dict[str, Any]
    result: dict[str, Any] | None
    model: str | None
    provider: str | None
    usage: JobUsage
    cost_usd: float
    latency_ms: float | None
    cache: dict[str, Any] | None
    attempts: int
    attempt_log: list[JobAttempt]
    error: JobError | None
    metadata: dict[str, Any]
    routing: dict[str, Any] | None = Field(
        None,
        description="The routing rule that chose the tier (docs/spend.md): `rule`, `from` (the tier "
        "asked for), `to`; an auto tier's choice also lists its `candidates` with their estimates.",
    )
    callback_url: str | None
    api_key_id: str | None = Field(None, description="The id of the API key that submitted it.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def from_row(cls, job: Job) -> JobPublic:
        """The public view of a job row."""
        error = JobError(code=job.error_code, message=job.error_message or "") if job.error_code else None
        usage = JobUsage(
            prompt_tokens=job.prompt_tokens,
            completion_tokens=job.completion_tokens,
            total_tokens=job.prompt_tokens + job.completion_tokens,
        )
        return cls(
            id=job.id,
            kind=job.kind,  # type: ignore[arg-type]
            tier=job.tier,
            priority=job.priority,
            status=job.status,  # type: ignore[arg-type]
            request=job.request,
            result=job.result,
            model=job.model,
            provider=job.provider,
            usage=usage,
            cost_usd=round(job.cost_usd, 8),
            latency_ms=job.latency_ms,
            cache=job.cache,
            attempts=job.attempts,
            attempt_log=[JobAttempt(**entry) for entry in job.attempt_log or []],
            error=error,
            metadata=job.job_metadata or {},
            routing=job.routing,
            callback_url=job.callback_url,
            api_key_id=job.api_key_id,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
        )


class JobList(BaseModel):
    """A page of jobs, newest first; pass ``next_cursor`` as ``cursor`` for the next page."""

    object: Literal["list"] = "list"
    data: list[JobPublic]
    has_more: bool
    next_cursor: str | None
