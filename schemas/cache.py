"""Shapes of the cache endpoints."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class KindStats(BaseModel):
    hits: int
    misses: int
    hit_rate: float
    entries: int
    bytes: int


class NamespaceChecks(BaseModel):
    """A semantic namespace's checks (workers/cache/verification.py), named by its hash only."""

    namespace: str = Field(description="The namespace's hash (system prompt and parameters).")
    verified: int = Field(description="Hits checked, by a shadow call or by feedback, ever.")
    disagreed: int = Field(description="Checks that found the cached answer wrong, ever.")
    estimated_false_hit_rate: float
    threshold: float = Field(description="The similarity this namespace's hits need now.")
    verified_at_threshold: int = Field(description="Checks since the threshold last moved.")
    disagreed_at_threshold: int


class SemanticKindStats(KindStats):
    verified: int = Field(description="Semantic hits checked (shadow calls and feedback).")
    disagreed: int = Field(description="Checks that found the cached answer wrong.")
    estimated_false_hit_rate: float = Field(description="disagreed / verified; 0 with no checks.")
    namespaces: list[NamespaceChecks] = Field(
        default_factory=list, description="The most checked namespaces (up to 20 over the tenant)."
    )


class TierCacheStats(BaseModel):
    exact: KindStats
    semantic: SemanticKindStats
    saved_usd: float
    entries: int
    bytes: int


class CacheStatsOut(BaseModel):
    """Per tier of the caller's tenant."""

    tenant: str
    tiers: dict[str, TierCacheStats]


class Invalidated(BaseModel):
    deleted: int


class CacheFeedback(BaseModel):
    """The body of ``POST /v1/jobs/{id}/feedback``."""

    model_config = ConfigDict(extra="forbid")

    cache: Literal["wrong"] = Field(description="wrong: the semantic hit answered another question.")


class CacheFeedbackOut(BaseModel):
    """What the feedback did."""

    job_id: str
    evicted: bool = Field(description="The cached entry that answered was still there and is gone.")
    negative_recorded: bool = Field(description="The query is never matched with that question again.")
    counted: bool = Field(description="Counted as a disagreement (once per job; false on a repeat).")
