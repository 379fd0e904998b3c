"""Usage rows and ended jobs at chosen times, as workers write them: the usage reports' tests use them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from workers import store
from workers.middleware.usage import usage_row


@dataclass(frozen=True)
class Call:
    """One job of the seed: ended at ``at`` after one call of ``model`` costing ``cost``."""

    at: datetime
    tier: str = "small"
    model: str = "emu-a"
    cost: float = 0.01
    api_key: str | None = "key_one"
    priority: str = "live"
    batch: str | None = None
    metadata: dict[str, Any] | None = None
    status: str = "succeeded"


def seed(engine: Engine, tenant_id: str, calls: list[Call]) -> None:
    """Jobs that ran and ended as a worker ends them, at the calls' times."""
    for call in calls:
        with store.session_scope(engine) as session:
            fields = {"api_key_id": call.api_key, "priority": call.priority, "batch_id": call.batch}
            job = store.insert_job(
                session,
                tenant_id=tenant_id,
                tier=call.tier,
                request={"messages": []},
                job_metadata=call.metadata or {},
                **fields,
            )
        running = store.claim_job(engine, job.id, 60)
        assert running is not None
        entry = {
            "attempt": 1,
            "model": call.model,
            "provider": "emulator",
            "outcome": "ok",
            "latency_ms": 1.0,
        }
        entry |= {"prompt_tokens": 10, "completion_tokens": 5, "cost_usd": call.cost}
        usage = usage_row(job.id, tenant_id, call.tier, entry).model_copy(update={"created_at": call.at})
        ended = {"status": call.status, "finished_at": call.at, "model": call.model, "provider": "emulator"}
        assert store.finish_job(engine, running, usage, **ended) is not None


# November 2026: five jobs over three days, two tiers, two models, keys, a batch, metadata.
NOVEMBER = {"from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"}
DAY = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)
SEED = [
    Call(DAY, metadata={"team": "search"}),
    Call(DAY + timedelta(minutes=10), model="emu-b", cost=0.02, metadata={"team": "search"}),
    Call(DAY + timedelta(days=1), tier="retry", cost=0.04, api_key="key_two", metadata={"team": "ads"}),
    Call(DAY + timedelta(days=1, hours=2), priority="batch", batch="batch_1", cost=0.08, api_key=None),
    Call(DAY + timedelta(days=2), status="failed", cost=0.16, batch="batch_1", metadata={"team": 7}),
    Call(datetime(2026, 10, 31, 23, 59, tzinfo=UTC), cost=1.0),  # outside November
]
