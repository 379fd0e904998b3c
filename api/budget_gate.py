"""At submission: refuse a job whose tenant or key has exhausted a hard budget (402).

Only budgets with ``on_exhausted = "fail"`` refuse at the door (a downgrade or a wait is the
worker's to make), and only when spent has reached the limit: reservations in flight may
still come back unused. One Redis round trip reads every counter (rebuilt first if lost).
"""

from __future__ import annotations

from api.keys import Principal
from api.services import Services
from workers.budgets.control import budget_exceeded


def refuse_if_exhausted(services: Services, principal: Principal, tier: str) -> None:
    """Raise ``budget_exceeded`` when a hard budget that applies to ``tier`` is used up."""
    models = services.settings.tiers[tier].models
    budgets = services.budgets.applicable(principal.tenant_id, principal.key_id, tier, models)
    hard = [budget for budget in budgets if budget.on_exhausted == "fail"]
    if hard:
        exhausted = services.budgets.exhausted(hard)
        if exhausted is not None:
            raise budget_exceeded(exhausted)
