"""The errors of spend control (docs/spend.md), in the one tree of schemas/errors.py::

SwitchyardError
├── BudgetExceeded (402 budget_exceeded: names the budget and when it resets)
├── KillSwitchEngaged (503 kill_switch, not an attempt: the job waits, or fails if the switch
│   says ``fail_queued``)
└── TenantDisabled (403 tenant_disabled)
"""

from __future__ import annotations

from schemas.errors import SwitchyardError


class BudgetExceeded(SwitchyardError):
    """A hard budget has nothing left for this call; ``budget`` and ``resets_at`` say which and when."""

    status_code = 402
    code = "budget_exceeded"


class KillSwitchEngaged(SwitchyardError):
    """An admin stopped spending for this call's tenant, key, tier, model or provider."""

    status_code = 503
    code = "kill_switch"
    counts_as_attempt = False


class TenantDisabled(SwitchyardError):
    """The tenant was disabled by a platform admin."""

    status_code = 403
    code = "tenant_disabled"
