"""The budgets of one process (a worker or the API): which apply, reserve, settle, read.

Built once per process (workers/runtime.py, api/services.py) over the process's Redis,
database and event emitter (``Outcomes.emit``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from redis import Redis
from sqlalchemy.engine import Engine

from schemas.spend_errors import BudgetExceeded
from workers.budgets.applicable import BudgetDirectory, for_job
from workers.budgets.estimate import Charge
from workers.budgets.ledger import Figures, Hold, Ledger, Refusal
from workers.budgets.terms import BudgetTerms
from workers.budgets.thresholds import Emit, ThresholdAnnouncer
from workers.keys import RedisKeys


class BudgetControl:
    """Budgets for the policy chain and the API: the directory, the ledger and thresholds."""

    def __init__(
        self,
        redis: Redis,
        keys: RedisKeys,
        engine: Engine,
        emit: Emit,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.directory = BudgetDirectory(engine)
        self.ledger = Ledger(redis, keys, engine, clock)
        self.thresholds = ThresholdAnnouncer(redis, keys, emit, clock)

    def applicable(
        self, tenant_id: str, api_key_id: str | None, tier: str, models: list[str]
    ) -> list[BudgetTerms]:
        """The budgets a call of ``tier`` on one of ``models`` counts against."""
        return for_job(self.directory.of_tenant(tenant_id), api_key_id, tier, models)

    def reserve(
        self, budgets: list[BudgetTerms], member: str, charge: Charge, hold_s: float
    ) -> Hold | Refusal:
        """Reserve ``charge`` against all ``budgets`` or none; a refusal announces its budget's 100 %."""
        outcome = self.ledger.reserve(budgets, member, charge, hold_s)
        if isinstance(outcome, Refusal):
            self.thresholds.check([outcome.figures], exhausted=True)
        return outcome

    def settle(self, hold: Hold, actual: Charge) -> None:
        """Settle a call at ``actual`` and announce the thresholds it crossed."""
        self.thresholds.check(self.ledger.settle(hold, actual))

    def count(self, budgets: list[BudgetTerms], actual: Charge, member: str) -> None:
        """Add a call settled elsewhere (a provider batch's line, a dead worker's lost attempt)
        to ``budgets``, dropping ``member``'s reservation if one is still held."""
        if budgets:
            now = self.ledger.clock()
            self.settle(Hold(member, tuple((b, b.period_at(now)) for b in budgets)), actual)

    def exhausted(self, budgets: list[BudgetTerms]) -> Figures | None:
        """The first of ``budgets`` whose spend reached its limit, or None."""
        for figures in self.ledger.figures(budgets):
            budget = figures.budget
            if (budget.limit_nano is not None and figures.spent.nano_usd >= budget.limit_nano) or (
                budget.limit_tokens is not None and figures.spent.tokens >= budget.limit_tokens
            ):
                return figures
        return None

    def figures(self, budgets: list[BudgetTerms]) -> list[Figures]:
        """Spent and reserved of each budget in its current period."""
        return self.ledger.figures(budgets)


def budget_exceeded(figures: Figures) -> BudgetExceeded:
    """The error naming the exhausted budget and when it resets."""
    summary = figures.budget.summary(figures.period)
    return BudgetExceeded(
        f"Budget {figures.budget.name or figures.budget.id!r} ({figures.budget.period}) is exhausted; "
        f"it resets at {summary['resets_at']}.",
        budget={k: summary[k] for k in ("id", "name", "period", "limit_usd", "limit_tokens")},
        resets_at=summary["resets_at"],
    )
