"""The per-call log of ``GET /v1/calls`` (docs/observability.md, "The call log")."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

CacheKind = Literal["exact", "semantic"]


class CallRecord(BaseModel):
    """One provider call, or one job a cache answered with no call."""

    id: str = Field(description="`call_<n>`: a provider call; `hit_<job id>`: a cache answer.")
    job_id: str
    attempt: int = Field(
        description="The job's attempt the call belongs to (a cache answer: the job's attempts)."
    )
    tier: str
    model: str | None
    provider: str | None
    priority: str = Field(description="The job's lane: live, batch or precompute.")
    latency_ms: float | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    cache: CacheKind | None = Field(description="exact or semantic: a cache answered; null: a provider call.")
    saved_usd: float | None = Field(description="A cache answer: what the call it replaced cost.")
    outcome: Literal["ok", "error"]
    error_code: str | None = Field(description="The stable error code of a failed call.")
    created_at: datetime = Field(
        description="When the call was recorded; a cache answer: its job's submission."
    )


class CallList(BaseModel):
    """A page of calls, newest first; pass ``next_cursor`` as ``cursor`` for the next page."""

    object: Literal["list"] = "list"
    data: list[CallRecord]
    has_more: bool
    next_cursor: str | None
