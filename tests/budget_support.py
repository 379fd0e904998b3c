"""Builders for the budget tests: terms, a ledger on the test Redis, usage rows in the database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from redis import Redis
from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from schemas.budgets import BudgetCreate
from schemas.settings import Settings
from schemas.spend_tables import Budget
from schemas.tables import Job, Usage, utcnow
from workers.audit import CLI
from workers.budgets import manage
from workers.budgets.control import BudgetControl
from workers.budgets.estimate import to_nano
from workers.budgets.terms import BudgetTerms
from workers.db import session_scope
from workers.event import Event
from workers.ids import new_id
from workers.keys import RedisKeys


def terms(tenant_id: str, **fields: Any) -> BudgetTerms:
    """A budget of ``tenant_id``: a month, $1, no token limit, default thresholds, unless given."""
    values: dict[str, Any] = {
        "id": new_id("bud"),
        "tenant_id": tenant_id,
        "api_key_id": None,
        "name": "test",
        "period": "month",
        "zone": "UTC",
        "limit_nano": to_nano(1.0),
        "limit_tokens": None,
        "tier": None,
        "model": None,
        "on_exhausted": "fail",
        "downgrade_tier": None,
        "thresholds": (0.5, 0.8, 1.0),
    }
    return BudgetTerms(**{**values, **fields})


def control(settings: Settings, engine: Engine, events: list[Event]) -> BudgetControl:
    """A budget control on the test Redis whose events land in ``events``."""
    redis = Redis.from_url(settings.redis_url)
    return BudgetControl(redis, RedisKeys(settings.key_prefix), engine, events.append)


def add_usage(
    engine: Engine,
    tenant_id: str,
    cost_usd: float,
    tokens: int = 10,
    tier: str = "small",
    model: str = "emu-a",
    api_key_id: str | None = None,
    at: datetime | None = None,
) -> None:
    """A finished job with one call's usage row."""
    now = at or utcnow()
    job_id = new_id("job")
    with Session(engine) as session:
        session.add(
            Job(
                id=job_id,
                tenant_id=tenant_id,
                tier=tier,
                status="succeeded",
                request={"messages": []},
                attempt_log=[],
                job_metadata={},
                api_key_id=api_key_id,
                created_at=now,
                updated_at=now,
            )
        )
        session.flush()
        session.add(
            Usage(
                job_id=job_id,
                tenant_id=tenant_id,
                tier=tier,
                model=model,
                provider="emulator",
                attempt=1,
                prompt_tokens=tokens,
                completion_tokens=0,
                cost_usd=cost_usd,
                outcome="ok",
                created_at=now,
            )
        )
        session.commit()


@pytest.fixture
def usage_rows(engine: Engine, tenant: str) -> Iterator[str]:
    """The tenant, whose usage rows are removed before its jobs are."""
    yield tenant
    with Session(engine) as session:
        session.execute(delete(Usage).where(col(Usage.tenant_id) == tenant))
        session.commit()


def add_budget(engine: Engine, settings: Settings, tenant_id: str, **fields: Any) -> Budget:
    """A budget row made as the API makes it (validated, audited as the CLI)."""
    with session_scope(engine) as session:
        row = manage.create_budget(session, settings, tenant_id, BudgetCreate.model_validate(fields), CLI)
        session.flush()
        session.expunge(row)
    return row
