"""Which cache a job uses, decided once at submission and stored on the row.

The mode is the job's ``cache`` or, when the job does not say, its tier's default. A job
with ``temperature`` above 0 asks for varied answers, so it is not cached unless it set
``cache`` itself. ``cache_ttl`` defaults to the tier's ``cache_ttl_s``. Embedding jobs never
use the semantic cache (it matches chat questions): a tier default of ``semantic`` gives them
``exact``.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.openai import ChatRequest, EmbeddingRequest
from schemas.settings import TierConfig


@dataclass(frozen=True)
class CachePolicy:
    mode: str  # "exact", "semantic" or "off"
    ttl_s: int

    @property
    def enabled(self) -> bool:
        return self.mode != "off"


def resolve(
    asked: str | None, ttl_s: int | None, request: ChatRequest | EmbeddingRequest, tier: TierConfig
) -> CachePolicy:
    """The job's cache mode and entry lifetime."""
    mode = asked or tier.cache
    if isinstance(request, EmbeddingRequest):
        mode = "exact" if mode == "semantic" else mode
    elif asked is None and (request.temperature or 0) > 0:
        mode = "off"
    return CachePolicy(mode=mode, ttl_s=ttl_s or tier.cache_ttl_s)
