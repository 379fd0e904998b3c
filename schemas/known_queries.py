"""Known queries: request and response models of ``/v1/known-queries``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.openai import ChatRequest
from schemas.tables import KnownQuery

MAX_TTL_S = 30 * 86_400
HHMM_EXAMPLE = ["01:00"]


class KnownQueryFields(BaseModel):
    """What can be set on a known query; every field optional (an update)."""

    model_config = ConfigDict(extra="forbid")

    tier: str | None = Field(None, min_length=1, max_length=64, examples=["small"])
    request: ChatRequest | None = None
    every_s: int | None = Field(
        None, ge=60, le=MAX_TTL_S, description="Refresh every this many seconds; or give `cron`."
    )
    cron: str | None = Field(
        None,
        min_length=1,
        max_length=120,
        description="Refresh at these times, read in `timezone`: five fields or an alias like `@daily`.",
        examples=["30 2 * * *"],
    )
    ttl_s: int | None = Field(
        None, ge=60, le=MAX_TTL_S, description="Lifetime of the cached answer; default: the tier's."
    )
    window_start: str | None = Field(
        None,
        max_length=5,
        description="Start of the local off-peak window, HH:MM; default from config.",
        examples=HHMM_EXAMPLE,
    )
    window_end: str | None = Field(
        None,
        max_length=5,
        description="End of the window (exclusive), HH:MM; may be before the start (wraps midnight); "
        "equal to the start means all day.",
        examples=["05:00"],
    )
    timezone: str | None = Field(
        None, max_length=64, description="IANA time zone of the window and cron; default from config."
    )
    enabled: bool | None = None


class KnownQueryCreate(KnownQueryFields):
    """The body of ``POST /v1/known-queries``: ``tier``, ``request`` and one of ``every_s`` /
    ``cron`` are required."""

    tier: str = Field(min_length=1, max_length=64, examples=["small"])
    request: ChatRequest
    enabled: bool = True


class KnownQueryUpdate(KnownQueryFields):
    """The body of ``PATCH /v1/known-queries/{id}``: only the fields given change. Giving
    ``every_s`` drops ``cron`` and the other way round."""


class KnownQueryPublic(BaseModel):
    """A known query as the API shows it."""

    id: str
    object: Literal["known_query"] = "known_query"
    tier: str
    request: dict[str, Any]
    cache_key: str = Field(description="The exact-cache key its answer is stored under.")
    every_s: int | None
    cron: str | None
    ttl_s: int
    window_start: str
    window_end: str
    timezone: str
    enabled: bool
    next_run_at: datetime = Field(description="Due from then; runs at the first scan inside the window.")
    last_run_at: datetime | None
    last_job_id: str | None = Field(description="The job of the last run (priority `precompute`).")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: KnownQuery) -> KnownQueryPublic:
        return cls(
            id=row.id,
            tier=row.tier,
            request=row.request,
            cache_key=row.cache_key,
            every_s=row.every_s,
            cron=row.cron,
            ttl_s=row.ttl_s,
            window_start=row.window_start,
            window_end=row.window_end,
            timezone=row.timezone,
            enabled=row.enabled,
            next_run_at=row.next_run_at,
            last_run_at=row.last_run_at,
            last_job_id=row.last_job_id,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class KnownQueryList(BaseModel):
    """A page of known queries, newest first; pass ``next_cursor`` as ``cursor`` for the next."""

    object: Literal["list"] = "list"
    data: list[KnownQueryPublic]
    has_more: bool
    next_cursor: str | None


class Suggestion(BaseModel):
    """A request that missed the exact cache often: register it with its ``tier`` and ``request``."""

    tier: str
    key: str = Field(description="The request's exact-cache key.")
    misses: int
    request: dict[str, Any] | None = Field(description="The request as it missed; ready to register.")
    cost_per_call_usd: float | None = Field(
        description="Cost of the cached answer, when one is cached now; else unknown."
    )
    estimated_savings_usd: float | None = Field(
        description="What the misses after the first would have saved at that cost."
    )
    known_query_id: str | None = Field(description="The known query already registered for it, if any.")


class SuggestionList(BaseModel):
    object: Literal["list"] = "list"
    hours: int
    data: list[Suggestion]
