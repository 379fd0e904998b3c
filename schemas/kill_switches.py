"""Kill switches over the API: what an admin sends to stop spending, and what it reads back.

docs/spend.md (``## Kill switch``) explains the scopes. Whether the named tier, model,
provider, tenant or key exists is checked against the config and the database
(workers/kill_switches.py), not here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.spend_tables import KillSwitch

Scope = Literal["all", "tenant", "api_key", "tier", "model", "provider"]
SCOPES: tuple[Scope, ...] = ("all", "tenant", "api_key", "tier", "model", "provider")


class KillSwitchCreate(BaseModel):
    """A stop on spending: every call (``all``) or those of one tenant, API key, tier, model
    (alias) or provider; ``tenant_id`` narrows it to one tenant's calls."""

    model_config = ConfigDict(extra="forbid")

    scope: Scope
    value: str = Field(
        "",
        max_length=128,
        description="What it stops: a tenant id, key id, tier, model alias or provider; '' for all.",
    )
    tenant_id: str | None = Field(
        None,
        max_length=40,
        description="Only this tenant's calls (a tenant admin's switches are always their own).",
    )
    fail_queued: bool = Field(
        False,
        description="Fail matching queued jobs with `kill_switch` instead of holding them until lifted.",
    )
    reason: str = Field("", max_length=500, description="Why, for the audit log and whoever lifts it.")


class KillSwitchPublic(BaseModel):
    """A kill switch as the API shows it; ``active`` until it is lifted."""

    id: str
    scope: str
    value: str
    tenant_id: str | None
    fail_queued: bool
    reason: str
    created_by: str | None = Field(description="The key that set it; null: the host's CLI.")
    created_at: datetime
    lifted_at: datetime | None
    lifted_by: str | None
    active: bool

    @classmethod
    def from_row(cls, row: KillSwitch) -> KillSwitchPublic:
        return cls(
            id=row.id,
            scope=row.scope,
            value=row.value,
            tenant_id=row.tenant_id,
            fail_queued=row.fail_queued,
            reason=row.reason,
            created_by=row.created_by,
            created_at=row.created_at,
            lifted_at=row.lifted_at,
            lifted_by=row.lifted_by,
            active=row.lifted_at is None,
        )


class KillSwitchList(BaseModel):
    """Kill switches, newest first."""

    data: list[KillSwitchPublic]
