"""Request and response models of budgets (``/v1/budgets``, ``/v1/admin/.../budgets``).

Checks that need the configuration (a known tier or model, a downgrade tier of the same kind)
are made by workers/budgets/manage.py; these models check the shape.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.spend_tables import Budget

Period = Literal["day", "month"]
OnExhausted = Literal["fail", "downgrade", "wait"]
DEFAULT_THRESHOLDS = [0.5, 0.8, 1.0]


def _check_thresholds(values: list[float] | None) -> list[float] | None:
    if values is None:
        return None
    if any(not 0 < value <= 1 for value in values):
        raise ValueError("each threshold is a share of the limit in (0, 1]")
    return sorted(set(values))


class BudgetUpdate(BaseModel):
    """The body of ``PATCH``: the fields given change; ``null`` clears an optional one."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=200)
    period: Period | None = None
    limit_usd: float | None = Field(None, gt=0, le=1e9, description="USD per period.")
    limit_tokens: int | None = Field(None, gt=0, le=10**15, description="Tokens per period.")
    tier: str | None = Field(None, max_length=64, description="Count only this tier's calls.")
    model: str | None = Field(None, max_length=128, description="Count only this model's calls.")
    on_exhausted: OnExhausted | None = None
    downgrade_tier: str | None = Field(None, max_length=64)
    thresholds: list[float] | None = Field(
        None, max_length=10, description="Shares that emit budget.threshold."
    )

    _thresholds = field_validator("thresholds")(_check_thresholds)


class BudgetCreate(BudgetUpdate):
    """The body of ``POST``: a budget of the tenant (no ``api_key_id``) or of one of its keys."""

    api_key_id: str | None = Field(None, max_length=40, description="The key it limits; none: the tenant.")
    period: Period = "month"
    on_exhausted: OnExhausted = "fail"
    thresholds: list[float] | None = Field(
        default_factory=lambda: list(DEFAULT_THRESHOLDS),
        max_length=10,
        description="Shares that emit events.",
    )

    @model_validator(mode="after")
    def _complete(self) -> Self:
        check_complete(self.limit_usd, self.limit_tokens, self.on_exhausted, self.downgrade_tier)
        return self


def check_complete(
    limit_usd: float | None, limit_tokens: int | None, on_exhausted: str, downgrade_tier: str | None
) -> None:
    """A budget limits something, and a downgrade says where to."""
    if limit_usd is None and limit_tokens is None:
        raise ValueError("set limit_usd, limit_tokens or both")
    if on_exhausted == "downgrade" and not downgrade_tier:
        raise ValueError("on_exhausted 'downgrade' needs downgrade_tier")


class BudgetPublic(BaseModel):
    """A budget as the API shows it."""

    id: str
    tenant_id: str
    api_key_id: str | None
    name: str
    period: Period
    limit_usd: float | None
    limit_tokens: int | None
    tier: str | None
    model: str | None
    on_exhausted: OnExhausted
    downgrade_tier: str | None
    thresholds: list[float]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Budget) -> BudgetPublic:
        return cls.model_validate(row, from_attributes=True)


class BudgetStatus(BudgetPublic):
    """A budget with its current period's figures."""

    spent_usd: float
    spent_tokens: int
    reserved_usd: float
    reserved_tokens: int
    remaining_usd: float | None = Field(description="None when it has no USD limit.")
    remaining_tokens: int | None = Field(description="None when it has no token limit.")
    period_start: datetime
    resets_at: datetime


class BudgetList(BaseModel):
    """Budgets with their figures."""

    data: list[BudgetStatus]
