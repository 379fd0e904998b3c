"""Service level objectives of a tier (``[tiers.X.slo]``) and the report of ``GET /v1/slo``.

An objective is a share of good events (docs/observability.md, "SLOs and alerts"):
- latency: ``latency_p95_s = 3.0`` says 95 % of the tier's live jobs that succeed end within
  3 s of their submission; the 5 % allowed to be slower is that objective's error budget;
- errors: ``error_rate = 0.01`` says at most 1 % of the jobs that end fail for a reason of the
  platform's (a caller's own fault, such as an exhausted budget, does not count).
Both are measured over ``window_s`` (30 days by default) and over short windows, whose burn
rates say how fast the budget goes (the Google SRE workbook's multi-window alerts).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

# The share of live jobs a p95 objective lets be slower than its threshold.
LATENCY_QUANTILE = 0.95
DAY_S = 86_400


class SloObjectives(BaseModel):
    """``[tiers.X.slo]``: one or both objectives and the window they hold over."""

    model_config = ConfigDict(extra="forbid")

    latency_p95_s: float | None = Field(
        None, gt=0, le=DAY_S, description="95 % of live jobs that succeed end within this many seconds."
    )
    error_rate: float | None = Field(
        None, gt=0, lt=1, description="At most this share of the jobs that end may fail (platform faults)."
    )
    window_s: int = Field(
        30 * DAY_S, ge=DAY_S, le=90 * DAY_S, description="The window the objectives hold over: 1 to 90 days."
    )

    @model_validator(mode="after")
    def _names_an_objective(self) -> Self:
        if self.latency_p95_s is None and self.error_rate is None:
            raise ValueError("an slo table sets latency_p95_s, error_rate or both")
        return self


class SloWindow(BaseModel):
    """One objective over one window: its events, the bad ones, and how fast they burn the budget."""

    window: str = Field(description="`slo` (the objective's whole window), 6h, 1h, 30m or 5m.")
    seconds: int
    events: int = Field(description="Jobs counted: ended (errors) or live and succeeded (latency).")
    bad: int = Field(description="Failed jobs (errors), or jobs slower than the threshold (latency).")
    bad_ratio: float | None = Field(description="bad / events; null with no events.")
    burn_rate: float | None = Field(
        description="bad_ratio / the allowed bad share: 1 spends the budget exactly over the window."
    )
    p95_s: float | None = Field(
        None, description="Latency only: p95 end-to-end seconds (nearest rank, to the ms)."
    )


class SloBudget(BaseModel):
    """The error budget over the objective's whole window."""

    allowed: float = Field(description="Bad events the objective allows: (1 - objective) x events.")
    consumed: int = Field(description="Bad events so far.")
    remaining: float = Field(description="allowed - consumed; negative once overspent.")
    remaining_ratio: float | None = Field(description="remaining / allowed; null with no events.")


class SloObjectiveReport(BaseModel):
    """One objective of a tier, with its figures."""

    objective: Literal["latency", "errors"]
    target: float = Field(
        description="latency: the p95 threshold in seconds; errors: the allowed error rate."
    )
    good_ratio_target: float = Field(description="The share of good events the objective asks for.")
    current: float | None = Field(description="latency: p95 seconds; errors: error rate; over the window.")
    met: bool | None = Field(
        description="Whether the window's figure is within the objective; null: no data."
    )
    state: Literal["ok", "burning", "exhausted", "no_data"] = Field(
        description="burning: a fast or slow burn alert would fire (1h and 5m over 14.4, or 6h and "
        "30m over 6); exhausted: no budget left."
    )
    budget: SloBudget
    windows: list[SloWindow]


class SloTierReport(BaseModel):
    """A tier's objectives."""

    tier: str
    window_s: int
    objectives: list[SloObjectiveReport]


class SloReport(BaseModel):
    """Every tier with objectives, measured at ``at`` over the jobs ``scope`` says."""

    at: datetime
    scope: Literal["tenant", "all"] = Field(
        description="tenant: the jobs of `tenant_id`; all: every tenant's."
    )
    tenant_id: str | None
    tiers: list[SloTierReport]
