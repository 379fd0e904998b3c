"""SQLModel tables of spend control: hourly usage rollups, budgets, kill switches, the audit log.

docs/spend.md explains each. The audit log is append-only: the migration adds triggers that
refuse UPDATE and DELETE on it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from schemas.columns import json_field, timestamp_field


class UsageHourly(SQLModel, table=True):
    """Usage summed per tenant, hour (UTC) and dimension, written as calls settle.

    ``api_key_id`` and ``batch_id`` are ``""`` when none, so the unique key has no NULLs.
    """

    __tablename__ = "usage_hourly"
    __table_args__ = (
        UniqueConstraint(
            "tenant_id",
            "hour",
            "tier",
            "model",
            "provider",
            "api_key_id",
            "priority",
            name="uq_usage_hourly_key",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenants.id", max_length=40)
    hour: datetime = timestamp_field(nullable=False)
    tier: str = Field(max_length=64)
    model: str = Field(max_length=128, description="The model alias; '' for a job no call answered.")
    provider: str = Field(max_length=64)
    api_key_id: str = Field(default="", max_length=40)
    priority: str = Field(default="live", max_length=16)
    jobs: int = Field(default=0, description="Jobs that ended in this hour.")
    calls: int = Field(default=0, description="Provider calls.")
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cache_hits: int = 0
    cache_savings_usd: float = Field(
        default=0.0, description="What the calls the cache answered would have cost."
    )


class Budget(SQLModel, table=True):
    """A spend limit of a tenant, or of one of its API keys, per day or month.

    Limits in USD and/or tokens; ``tier`` and ``model`` narrow what it counts. ``on_exhausted``:
    ``fail`` (budget_exceeded), ``downgrade`` (to ``downgrade_tier``) or ``wait`` (the next period).
    """

    __tablename__ = "budgets"
    __table_args__ = (Index("ix_budgets_tenant", "tenant_id", "api_key_id"),)

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenants.id", max_length=40)
    api_key_id: str | None = Field(default=None, max_length=40)
    name: str = Field(default="", max_length=200)
    period: str = Field(max_length=8, description="day or month")
    limit_usd: float | None = None
    limit_tokens: int | None = None
    tier: str | None = Field(default=None, max_length=64)
    model: str | None = Field(default=None, max_length=128)
    on_exhausted: str = Field(default="fail", max_length=16)
    downgrade_tier: str | None = Field(default=None, max_length=64)
    thresholds: list[float] = json_field(nullable=False)
    created_at: datetime = timestamp_field(nullable=False)
    updated_at: datetime = timestamp_field(nullable=False)


class KillSwitch(SQLModel, table=True):
    """A stop on spending: ``scope`` is all, tenant, api_key, tier, model or provider; ``value``
    names what it stops ('' for all). ``tenant_id`` set: it stops only that tenant's calls.
    Lifted switches stay, with ``lifted_at``, as history."""

    __tablename__ = "kill_switches"
    __table_args__ = (Index("ix_kill_switches_active", "lifted_at"),)

    id: str = Field(primary_key=True, max_length=40)
    scope: str = Field(max_length=16)
    value: str = Field(default="", max_length=128)
    tenant_id: str | None = Field(default=None, max_length=40)
    fail_queued: bool = False
    reason: str = Field(default="", max_length=500)
    created_by: str | None = Field(default=None, max_length=40, description="The key that set it.")
    created_at: datetime = timestamp_field(nullable=False)
    lifted_at: datetime | None = timestamp_field()
    lifted_by: str | None = Field(default=None, max_length=40)


class AuditEntry(SQLModel, table=True):
    """One change made through the admin surfaces: who, what, when, from where, before and after.

    Append-only (triggers refuse UPDATE and DELETE). Never holds a secret (workers/audit.py).
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_tenant_at", "tenant_id", "at"),
        Index("ix_audit_log_at", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = timestamp_field(nullable=False)
    actor_key_id: str | None = Field(default=None, max_length=40, description="None: the CLI on the host.")
    actor_tenant_id: str | None = Field(default=None, max_length=40)
    tenant_id: str | None = Field(default=None, max_length=40, description="The tenant the change is about.")
    action: str = Field(max_length=64, description="e.g. key.created, budget.updated, kill_switch.set")
    target_type: str = Field(max_length=32)
    target_id: str = Field(default="", max_length=128)
    address: str | None = Field(default=None, max_length=64, description="The client's IP address.")
    before: dict[str, Any] | None = json_field()
    after: dict[str, Any] | None = json_field()
