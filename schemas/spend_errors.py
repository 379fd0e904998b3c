"""The errors of spend control (docs/spend.md), in the one tree of schemas/errors.py::

SwitchyardError
├── BudgetExceeded (402 budget_exceeded: names the budget and when it resets)
├── BudgetWait (402 budget_wait, not an attempt: the job waits for the budget's next period)
├── KillSwitchEngaged (503 kill_switch, not an attempt: the job waits ``retry_after`` seconds)
├── KillSwitchFailsQueued (503 kill_switch, final: the switch says ``fail_queued``)
├── KillSwitchExists (409 kill_switch_exists: the same switch is already set; names it)
├── TenantDisabled (403 tenant_disabled)
├── TierNotAllowed (403 tier_not_allowed: the key's ``allowed_tiers`` exclude the job's tier)
├── TenantNameTaken (409 tenant_name_taken)
├── KeyNotActive (409 key_not_active: a revoked or expired key cannot be rotated)
└── InvalidRequest (400 invalid_request)
    ├── NoTierAccepts (400 no_tier_accepts: names the auto tier and its candidates' estimates)
    ├── InvalidGroupBy (400 invalid_group_by: a usage report's unknown ``group_by``)
    ├── InvalidUsageRange (400 invalid_usage_range: ``from`` not before ``to``)
    ├── UsageRangeTooLong (400 usage_range_too_long: longer than a report may span)
    └── TooManyUsageGroups (400 too_many_usage_groups: a grouping with too many rows)
"""

from __future__ import annotations

from typing import Any

from schemas.errors import InvalidRequest, SwitchyardError


class BudgetExceeded(SwitchyardError):
    """A hard budget has nothing left for this call; ``budget`` and ``resets_at`` say which and when."""

    status_code = 402
    code = "budget_exceeded"


class BudgetWait(SwitchyardError):
    """A budget with ``on_exhausted = "wait"`` has no room: the job waits ``retry_after`` seconds,
    until the budget's period resets."""

    status_code = 402
    code = "budget_wait"
    retryable = True
    counts_as_attempt = False

    def __init__(self, message: str, *, retry_after: float, **details: Any) -> None:
        super().__init__(message, **details)
        self.retry_after = retry_after


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


class TierNotAllowed(SwitchyardError):
    """The API key may submit only to its ``allowed_tiers``, and the job names another tier."""

    status_code = 403
    code = "tier_not_allowed"


class TenantNameTaken(SwitchyardError):
    """Another tenant already has this name (names are unique: the CLI finds tenants by name)."""

    status_code = 409
    code = "tenant_name_taken"


class KeyNotActive(SwitchyardError):
    """The key is revoked or expired: there is nothing left to rotate; create a new key."""

    status_code = 409
    code = "key_not_active"


class NoTierAccepts(InvalidRequest):
    """No candidate of the auto tier a job named accepts its request (routing by cost)."""

    code = "no_tier_accepts"


class InvalidGroupBy(InvalidRequest):
    """A usage report's ``group_by`` names no dimension it knows."""

    code = "invalid_group_by"


class InvalidUsageRange(InvalidRequest):
    """A usage report's ``from`` is not before its ``to``."""

    code = "invalid_usage_range"


class UsageRangeTooLong(InvalidRequest):
    """A usage report spans more days than one report may."""

    code = "usage_range_too_long"


class TooManyUsageGroups(InvalidRequest):
    """A usage report's grouping makes more rows than one answer holds; group by less or narrow it."""

    code = "too_many_usage_groups"
