"""The errors of spend control (docs/spend.md), in the one tree of schemas/errors.py::

SwitchyardError
├── BudgetExceeded (402 budget_exceeded: names the budget and when it resets)
├── KillSwitchEngaged (503 kill_switch, not an attempt: the job waits ``retry_after`` seconds)
├── KillSwitchFailsQueued (503 kill_switch, final: the switch says ``fail_queued``)
├── KillSwitchExists (409 kill_switch_exists: the same switch is already set; names it)
└── TenantDisabled (403 tenant_disabled)
"""

from __future__ import annotations

from typing import Any

from schemas.errors import SwitchyardError


class BudgetExceeded(SwitchyardError):
    """A hard budget has nothing left for this call; ``budget`` and ``resets_at`` say which and when."""

    status_code = 402
    code = "budget_exceeded"


class KillSwitchEngaged(SwitchyardError):
    """An admin stopped spending for this call's tenant, key, tier, model or provider; the job
    is handed back to look again in ``retry_after`` seconds."""

    status_code = 503
    code = "kill_switch"
    counts_as_attempt = False

    def __init__(self, message: str, *, retry_after: float, **details: Any) -> None:
        super().__init__(message, **details)
        self.retry_after = retry_after


class KillSwitchFailsQueued(SwitchyardError):
    """A kill switch set with ``fail_queued``: the job fails with ``kill_switch``, not retried."""

    status_code = 503
    code = "kill_switch"


class KillSwitchExists(SwitchyardError):
    """An active switch with the same scope, value and tenant is already set (``kill_switch``)."""

    status_code = 409
    code = "kill_switch_exists"


class TenantDisabled(SwitchyardError):
    """The tenant was disabled by a platform admin."""

    status_code = 403
    code = "tenant_disabled"
