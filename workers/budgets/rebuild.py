"""The durable side of the ledger: a budget period's spend summed from the usage table.

The usage table is the truth: one row per provider call, written in the transaction that
ends the attempt. A budget's counter lost from Redis (restart, FLUSHALL, eviction) is rebuilt
from these sums before any reservation against it is allowed. A key's budget counts the calls
of the jobs that key submitted (``jobs.api_key_id``; usage rows have no key column).
"""

from __future__ import annotations

import time
from datetime import timedelta

from redis import Redis
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from schemas.tables import Job, Usage
from workers.budgets.estimate import Charge, to_nano
from workers.budgets.periods import Period
from workers.budgets.terms import BudgetTerms
from workers.keys import RedisKeys

LOCK_S = 10.0  # a rebuild is one indexed query; a holder dead longer than this lets another try
KEEP_AFTER_END = timedelta(days=2)  # a counter outlives its period, for late settles and reads


def spent_in(engine: Engine, budget: BudgetTerms, period: Period) -> Charge:
    """What the calls that count against ``budget`` cost within ``period``, from the database."""
    tokens = func.coalesce(func.sum(col(Usage.prompt_tokens) + col(Usage.completion_tokens)), 0)
    query = select(func.coalesce(func.sum(col(Usage.cost_usd)), 0.0), tokens).where(
        col(Usage.tenant_id) == budget.tenant_id,
        col(Usage.created_at) >= period.start,
        col(Usage.created_at) < period.end,
    )
    if budget.tier is not None:
        query = query.where(col(Usage.tier) == budget.tier)
    if budget.model is not None:
        query = query.where(col(Usage.model) == budget.model)
    if budget.api_key_id is not None:
        query = query.join(Job, col(Job.id) == col(Usage.job_id)).where(
            col(Job.api_key_id) == budget.api_key_id
        )
    with Session(engine) as session:
        cost, used = session.execute(query).one()
    return Charge(to_nano(float(cost)), int(used))


class Rebuilder:
    """Recreates lost counters, one process at a time per counter (a short Redis lock)."""

    def __init__(self, redis: Redis, keys: RedisKeys, engine: Engine, init_script: object) -> None:
        self.redis = redis
        self.keys = keys
        self.engine = engine
        self._init = init_script

    def rebuild(self, budget: BudgetTerms, period: Period, wait_s: float = 5.0) -> None:
        """Make sure the counter exists: build it here, or wait for the process that is."""
        lock = self.keys.budget_rebuild_lock(budget.id, period.label)
        counter = self.keys.budget_counter(budget.id, period.label)
        deadline = time.monotonic() + wait_s
        while not self.redis.hexists(counter, "spent_n"):
            if self.redis.set(lock, "1", nx=True, px=int(LOCK_S * 1000)):
                try:
                    spent = spent_in(self.engine, budget, period)
                    expire_at = int((period.end + KEEP_AFTER_END).timestamp())
                    self._init(keys=[counter], args=[spent.nano_usd, spent.tokens, expire_at])  # type: ignore[operator]
                finally:
                    self.redis.delete(lock)
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"budget {budget.id} counter is being rebuilt elsewhere for too long")
            time.sleep(0.02)
