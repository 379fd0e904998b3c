"""A budget as the ledger reads it: its limits in integer units, its scope and its zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.spend_tables import Budget
from workers.budgets.estimate import to_nano
from workers.budgets.periods import Period, period_at

DEFAULT_THRESHOLDS = (0.5, 0.8, 1.0)


@dataclass(frozen=True)
class BudgetTerms:
    """One budget's limits (nano-dollars and tokens, None: no limit), what it counts and when."""

    id: str
    tenant_id: str
    api_key_id: str | None
    name: str
    period: str
    zone: str
    limit_nano: int | None
    limit_tokens: int | None
    tier: str | None
    model: str | None
    on_exhausted: str
    downgrade_tier: str | None
    thresholds: tuple[float, ...]

    @classmethod
    def of(cls, row: Budget, zone: str | None) -> BudgetTerms:
        """The terms of a budget row, in its tenant's time zone."""
        return cls(
            id=row.id,
            tenant_id=row.tenant_id,
            api_key_id=row.api_key_id,
            name=row.name,
            period=row.period,
            zone=zone or "UTC",
            limit_nano=None if row.limit_usd is None else to_nano(row.limit_usd),
            limit_tokens=row.limit_tokens,
            tier=row.tier,
            model=row.model,
            on_exhausted=row.on_exhausted,
            downgrade_tier=row.downgrade_tier,
            thresholds=DEFAULT_THRESHOLDS if row.thresholds is None else tuple(row.thresholds),
        )

    def period_at(self, now: datetime) -> Period:
        """The period of this budget that holds ``now``."""
        return period_at(self.period, self.zone, now)

    def counts(self, tier: str, models: list[str]) -> bool:
        """Whether a call of ``tier`` on one of ``models`` counts against this budget."""
        return (self.tier is None or self.tier == tier) and (self.model is None or self.model in models)

    def used_share(self, nano: int, tokens: int) -> float:
        """The larger share of its limits that ``nano`` and ``tokens`` take (0 with no limit)."""
        shares = [0.0]
        if self.limit_nano:
            shares.append(nano / self.limit_nano)
        if self.limit_tokens:
            shares.append(tokens / self.limit_tokens)
        return max(shares)

    def summary(self, period: Period) -> dict[str, Any]:
        """What an error or an event says about the budget: which it is, its limit, its reset."""
        return {
            "id": self.id,
            "name": self.name,
            "period": self.period,
            "api_key_id": self.api_key_id,
            "tier": self.tier,
            "model": self.model,
            "limit_usd": None if self.limit_nano is None else self.limit_nano / 1_000_000_000,
            "limit_tokens": self.limit_tokens,
            "period_start": period.start.isoformat(),
            "resets_at": period.end.isoformat(),
        }
