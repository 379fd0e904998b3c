"""Label values that come from a request, bounded: an unknown tier is counted as ``unknown``."""

from __future__ import annotations

from schemas.settings import Settings

UNKNOWN = "unknown"


def tier_label(settings: Settings, tier: str | None) -> str:
    """``tier`` when configured (a tier or an auto tier), else ``unknown``: a client's typo must
    not become a new time series."""
    if tier and (tier in settings.tiers or tier in settings.auto_tiers):
        return tier
    return UNKNOWN
