"""Creating, changing, deleting and listing budgets, for the API's routes (and a CLI).

Every change writes an audit entry (``budget.created``, ``budget.updated``,
``budget.deleted``) in the same transaction, with the budget's values before and after.
Checks that need the configuration live here: a known tier and model, and a downgrade tier
that is configured and serves the same kind of job as the budget's tier.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from schemas.budgets import (
    DEFAULT_THRESHOLDS,
    BudgetCreate,
    BudgetPublic,
    BudgetStatus,
    BudgetUpdate,
    check_complete,
)
from schemas.errors import InvalidRequest, NotFound
from schemas.settings import Settings
from schemas.spend_tables import Budget
from schemas.tables import ApiKey, Tenant, utcnow
from workers import audit
from workers.budgets.control import BudgetControl
from workers.budgets.estimate import NANO
from workers.budgets.ledger import Figures
from workers.budgets.terms import BudgetTerms
from workers.ids import new_id


def _values(row: Budget) -> dict[str, Any]:
    return BudgetPublic.from_row(row).model_dump(mode="json")


def check_config(settings: Settings, row: Budget) -> None:
    """Refuse a budget that names what the configuration does not have."""
    if row.tier is not None and row.tier not in settings.tiers:
        raise InvalidRequest(f"Unknown tier {row.tier!r}.", field="tier")
    if row.model is not None and row.model not in settings.models:
        raise InvalidRequest(f"Unknown model {row.model!r}.", field="model")
    target = row.downgrade_tier
    if target is None:
        return
    if target not in settings.tiers:
        raise InvalidRequest(f"Unknown downgrade_tier {target!r}.", field="downgrade_tier")
    if row.tier is not None and settings.tier_kind(target) != settings.tier_kind(row.tier):
        raise InvalidRequest(
            "downgrade_tier must serve the same kind of job as tier.", field="downgrade_tier"
        )
    if target == row.tier:
        raise InvalidRequest("downgrade_tier must be another tier than tier.", field="downgrade_tier")


def _check(settings: Settings, row: Budget) -> None:
    try:
        check_complete(row.limit_usd, row.limit_tokens, row.on_exhausted, row.downgrade_tier)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from exc
    check_config(settings, row)


def create_budget(
    session: Session, settings: Settings, tenant_id: str, body: BudgetCreate, actor: audit.Actor
) -> Budget:
    """Add a budget to the tenant (or to one of its keys: the key must be the tenant's)."""
    if session.get(Tenant, tenant_id) is None:
        raise NotFound(f"No tenant {tenant_id!r}.")
    if body.api_key_id is not None:
        key = session.get(ApiKey, body.api_key_id)
        if key is None or key.tenant_id != tenant_id:
            raise NotFound(f"No API key {body.api_key_id!r} in this tenant.")
    now = utcnow()
    fields = body.model_dump(exclude={"name", "thresholds"})
    row = Budget(
        id=new_id("bud"),
        tenant_id=tenant_id,
        name=body.name or "",
        thresholds=list(DEFAULT_THRESHOLDS) if body.thresholds is None else body.thresholds,
        created_at=now,
        updated_at=now,
        **fields,
    )
    _check(settings, row)
    session.add(row)
    audit.record(session, actor, "budget.created", "budget", row.id, tenant_id, None, _values(row))
    return row


def get_budget(
    session: Session, budget_id: str, tenant_id: str | None = None, key_level: bool = False
) -> Budget:
    """The budget, if it is ``tenant_id``'s (any tenant's when None) and, with ``key_level``, a key's."""
    row = session.get(Budget, budget_id)
    if (
        row is None
        or (tenant_id is not None and row.tenant_id != tenant_id)
        or (key_level and row.api_key_id is None)
    ):
        raise NotFound(f"No budget {budget_id!r}.")
    return row


def update_budget(
    session: Session, settings: Settings, row: Budget, body: BudgetUpdate, actor: audit.Actor
) -> Budget:
    """Change the fields ``body`` gives."""
    before = _values(row)
    for name in body.model_fields_set:
        value = getattr(body, name)
        setattr(row, name, "" if name == "name" and value is None else value)
    if row.thresholds is None:  # null: back to the defaults ([] turns the events off)
        row.thresholds = list(DEFAULT_THRESHOLDS)
    _check(settings, row)
    row.updated_at = utcnow()
    session.add(row)
    audit.record(session, actor, "budget.updated", "budget", row.id, row.tenant_id, before, _values(row))
    return row


def delete_budget(session: Session, row: Budget, actor: audit.Actor) -> None:
    """Remove the budget; its counters in Redis expire with their period."""
    audit.record(session, actor, "budget.deleted", "budget", row.id, row.tenant_id, _values(row), None)
    session.delete(row)


def tenant_budgets(session: Session, tenant_id: str) -> list[Budget]:
    """The tenant's budgets and its keys', oldest first."""
    query = select(Budget).where(col(Budget.tenant_id) == tenant_id).order_by(col(Budget.created_at))
    return list(session.exec(query).all())


def with_figures(session: Session, control: BudgetControl, rows: list[Budget]) -> list[BudgetStatus]:
    """Each budget with its current period's spent, reserved and remaining."""
    zones = {
        tenant.id: tenant.timezone
        for tenant in session.exec(select(Tenant).where(col(Tenant.id).in_({row.tenant_id for row in rows})))
    }
    figures = control.figures([BudgetTerms.of(row, zones.get(row.tenant_id)) for row in rows])
    return [_status(row, f) for row, f in zip(rows, figures, strict=True)]


def _status(row: Budget, figures: Figures) -> BudgetStatus:
    spent, reserved, budget = figures.spent, figures.reserved, figures.budget
    remaining_nano = (
        None if budget.limit_nano is None else budget.limit_nano - spent.nano_usd - reserved.nano_usd
    )
    remaining_tokens = (
        None if budget.limit_tokens is None else budget.limit_tokens - spent.tokens - reserved.tokens
    )
    return BudgetStatus(
        **BudgetPublic.from_row(row).model_dump(),
        spent_usd=spent.usd,
        spent_tokens=spent.tokens,
        reserved_usd=reserved.usd,
        reserved_tokens=reserved.tokens,
        remaining_usd=None if remaining_nano is None else max(0, remaining_nano) / NANO,
        remaining_tokens=None if remaining_tokens is None else max(0, remaining_tokens),
        period_start=figures.period.start,
        resets_at=figures.period.end,
    )
