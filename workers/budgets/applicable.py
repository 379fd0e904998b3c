"""Which budgets a job answers to: its tenant's, and its API key's, narrowed by tier and model.

Read from the database with one indexed query per tenant, and kept per process for
``CACHE_S`` seconds, so the hot path pays the query once a second at most; a budget created,
changed or deleted takes effect within that time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from schemas.spend_tables import Budget
from schemas.tables import Tenant
from workers.budgets.terms import BudgetTerms

CACHE_S = 1.0


def load_budgets(session: Session, tenant_id: str) -> list[BudgetTerms]:
    """Every budget of the tenant and of its keys, in its time zone."""
    rows = session.execute(
        select(Budget, Tenant.timezone)  # type: ignore[call-overload]
        .join(Tenant, col(Tenant.id) == col(Budget.tenant_id))
        .where(col(Budget.tenant_id) == tenant_id)
        .order_by(col(Budget.created_at))
    ).all()
    return [BudgetTerms.of(budget, zone) for budget, zone in rows]


def for_job(
    budgets: list[BudgetTerms], api_key_id: str | None, tier: str, models: list[str]
) -> list[BudgetTerms]:
    """The budgets a call of ``tier`` on one of ``models`` by key ``api_key_id`` counts against."""
    return [
        budget
        for budget in budgets
        if (budget.api_key_id is None or budget.api_key_id == api_key_id) and budget.counts(tier, models)
    ]


class BudgetDirectory:
    """A tenant's budgets, read at most once per ``CACHE_S`` per process."""

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self._clock = clock
        self._entries: dict[str, tuple[float, list[BudgetTerms]]] = {}
        self._lock = threading.Lock()

    def of_tenant(self, tenant_id: str) -> list[BudgetTerms]:
        """The tenant's budgets (tenant-level and its keys')."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(tenant_id)
        if entry is not None and entry[0] > now:
            return entry[1]
        with Session(self.engine) as session:
            budgets = load_budgets(session, tenant_id)
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[tenant_id] = (now + CACHE_S, budgets)
        return budgets

    def forget(self, tenant_id: str) -> None:
        """Drop the tenant's entry, so this process reads a change at once."""
        with self._lock:
            self._entries.pop(tenant_id, None)
