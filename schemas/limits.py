"""``GET /v1/limits``: rate limits, headroom, pauses, queues and drain times."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ModelLimitsOut(BaseModel):
    """One (provider, model) bucket, shared by every alias that points at it."""

    provider: str
    model: str
    aliases: list[str]
    window_s: float = Field(description="Length of the limit window (with the grant-to-arrival margin).")
    rpm: int | None = Field(description="Configured requests per window; null = unlimited.")
    tpm: int | None = Field(description="Configured tokens per window; null = unlimited.")
    max_concurrency: int | None
    factor: float = Field(description="Share of the configured limits in force; below 1 after bare 429s.")
    requests_used: int
    tokens_used: int
    in_flight: int
    requests_headroom: int | None = Field(description="Requests left in the current window.")
    tokens_headroom: int | None = Field(description="Tokens left in the current window.")
    paused_s: float = Field(description="Seconds until a provider's Retry-After pause ends; 0 = not paused.")


class TierLimitsOut(BaseModel):
    """One tier: queued jobs by priority class, and how long its chain needs to drain them."""

    tier: str
    models: list[str]
    queued: dict[str, int]
    jobs_per_second: float | None = Field(description="Drain rate under the limits; null = unlimited.")
    paused_s: float
    max_queue_seconds: float
    max_queue_depth: int
    live_drain_s: float
    total_drain_s: float
    live_saturated: bool = Field(description="New live jobs are refused with 429 tier_saturated.")
    full: bool = Field(description="Every new job is refused with 429 queue_full.")


class TenantLimitsOut(BaseModel):
    """The caller's tenant: its submission rate and running-jobs cap."""

    id: str
    rpm: int | None
    window_s: float
    submissions_used: int
    max_running_jobs: int | None
    running: int


class LimitsReport(BaseModel):
    window_s: float
    models: list[ModelLimitsOut]
    tiers: list[TierLimitsOut]
    tenant: TenantLimitsOut
