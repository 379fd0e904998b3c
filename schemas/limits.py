"""``GET /v1/limits``: the caller's limits and backlog; for admin keys also every model's rate
limits, headroom and pauses, and every tier's queue and drain time."""

from __future__ import annotations

from pydantic import BaseModel, Field

from schemas.kill_switches import KillSwitchPublic


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


class TenantBacklogOut(BaseModel):
    """The caller's jobs on one tier that have not ended."""

    tier: str
    queued: dict[str, int] = Field(description="Queued jobs by priority class (live, batch, precompute).")
    running: int


class LimitsReport(BaseModel):
    """The caller's part for every key; the global part (every tenant's work) for admin keys."""

    window_s: float
    tenant: TenantLimitsOut
    backlog: list[TenantBacklogOut] = Field(description="The caller's queued and running jobs, per tier.")
    models: list[ModelLimitsOut] | None = Field(
        description="Admin keys only (null otherwise): every limited (provider, model) bucket."
    )
    tiers: list[TierLimitsOut] | None = Field(
        description="Admin keys only (null otherwise): every tier's queue depth and drain time."
    )
    kill_switches: list[KillSwitchPublic] = Field(
        default_factory=list,
        description="The active kill switches that can stop the caller's calls (all for the platform admin).",
    )
