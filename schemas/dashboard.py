"""``GET /v1/dashboard`` and ``GET /v1/jobs/{id}/timeline``: what the dashboard page and
``switchyard top`` show (docs/observability.md, "Dashboard").

Every figure is over a bounded recent window so the page stays fast with any number of jobs:
the window and the sample size are in the answer, with ``capped`` when the sample was full.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from schemas.budgets import BudgetStatus
from schemas.kill_switches import KillSwitchPublic
from schemas.limits import ModelLimitsOut, TenantBacklogOut, TenantLimitsOut, TierLimitsOut


class Throughput(BaseModel):
    """Jobs that ended and jobs submitted in the last ``window_s`` seconds."""

    window_s: float
    ended: int
    submitted: int | None = Field(description="Null when the tenants were too many to count cheaply.")
    ended_per_s: float
    submitted_per_s: float | None
    ended_by_status: dict[str, int]
    ended_per_minute: list[int] = Field(
        description="Jobs ended in each of the last 15 minutes, oldest first (the sparkline)."
    )


class ModelLatency(BaseModel):
    """Provider-call latency of one model over the recent calls."""

    model: str
    provider: str
    calls: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int
    rate_limited: int


class CallFigures(BaseModel):
    """Provider calls over the latency window: latency per model, and outcomes."""

    window_s: float
    sample_limit: int
    capped: bool = Field(description="The window held more calls than the sample; the newest were used.")
    calls: int
    errors: int
    rate_limited: int
    error_rate: float
    rate_limited_rate: float
    by_outcome: dict[str, int]
    models: list[ModelLatency]


class JobOutcomes(BaseModel):
    """Jobs that ended in the latency window, and how many failed, by error code."""

    window_s: float
    ended: int
    failed: int
    failure_rate: float
    by_error_code: dict[str, int]
    capped: bool


class CacheKind(BaseModel):
    hits: int
    misses: int
    hit_rate: float


class CacheFigures(BaseModel):
    """Today's (UTC) jobs answered by a cache and what they saved; lookups since the counters began."""

    jobs_today: int
    hits_today: int
    hit_rate_today: float
    savings_today_usd: float
    lookups: dict[str, CacheKind] = Field(description="exact and semantic lookups, all time.")
    saved_usd: float = Field(description="Savings counted by the cache since its counters began.")


class SpendFigures(BaseModel):
    """Today's (UTC) spend from the hourly rollups, and the budgets with their current period."""

    today_usd: float
    calls_today: int
    budgets: list[BudgetStatus]


class Limiter(BaseModel):
    """The caller's tenant limits; for admin keys also every model bucket's headroom."""

    tenant: TenantLimitsOut
    models: list[ModelLimitsOut] | None


class Queues(BaseModel):
    """Every tier's queue for admin keys (null otherwise); the tenant's own backlog for all."""

    tiers: list[TierLimitsOut] | None
    backlog: list[TenantBacklogOut]


class Webhooks(BaseModel):
    dead_letters: int = Field(description="Deliveries that gave up (status failed), counted up to the cap.")
    capped: bool


class FailedJob(BaseModel):
    id: str
    tenant_id: str
    tier: str
    model: str | None
    error_code: str | None
    error_message: str | None
    finished_at: datetime | None


class Dashboard(BaseModel):
    """Everything the dashboard shows, for what the key may see."""

    object: Literal["dashboard"] = "dashboard"
    generated_at: datetime
    scope: Literal["tenant", "platform"] = Field(
        description="platform: job figures of every tenant (platform admin keys); tenant: the caller's."
    )
    tenant_id: str
    global_figures: bool = Field(description="Queues and limiter headroom of every tier and model are shown.")
    took_ms: float
    throughput: Throughput
    calls: CallFigures
    jobs: JobOutcomes
    cache: CacheFigures
    spend: SpendFigures
    queues: Queues
    limiter: Limiter
    webhooks: Webhooks
    kill_switches: list[KillSwitchPublic]
    failed_jobs: list[FailedJob]


class TimelineEvent(BaseModel):
    """One moment of a job's life."""

    at: datetime | None
    kind: Literal["submitted", "routed", "queued", "started", "attempt", "cache", "ended", "webhook"]
    title: str
    detail: dict[str, Any] = Field(default_factory=dict)


class DeliveryOut(BaseModel):
    """A webhook delivery of the job's events, with its attempts so far."""

    id: str
    event_type: str
    url: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    last_response_ms: float | None
    created_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None


class JobTimeline(BaseModel):
    """A job for its page: the facts, the timeline, its deliveries, request and result."""

    object: Literal["job.timeline"] = "job.timeline"
    id: str
    tenant_id: str
    tier: str
    priority: str
    status: str
    model: str | None
    provider: str | None
    cost_usd: float
    latency_ms: float | None
    attempts: int
    cache: dict[str, Any] | None
    routing: dict[str, Any] | None
    error: dict[str, str] | None
    events: list[TimelineEvent]
    deliveries: list[DeliveryOut]
    content_shown: bool = Field(
        description="False for a platform admin looking at another tenant's job: no request or result."
    )
    request: dict[str, Any] | None
    result: dict[str, Any] | None
