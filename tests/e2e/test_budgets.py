"""Hard budgets across real worker processes: exact under concurrency, held through the loss of
their Redis state, and a killed worker's reservation released when its lease would expire.

The emulator stands in for the provider and counts the calls that reach it. Its answers are
cut at ``max_tokens`` (16), and the tier's model prices output at ten times input, so a
reservation (estimated prompt + max_tokens) is within a few prompt tokens of the actual cost.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from e2e_stack import Stack
from redis import Redis
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from api.keys import create_key, create_tenant
from schemas.budgets import BudgetCreate
from schemas.openai import ChatRequest
from schemas.tables import Usage
from workers.audit import CLI
from workers.budgets import manage
from workers.budgets.control import BudgetControl
from workers.budgets.estimate import NANO, max_charge
from workers.budgets.terms import BudgetTerms
from workers.chain import Route
from workers.db import make_engine, session_scope
from workers.keys import RedisKeys
from workers.ratelimit.tokens import estimate_prompt_tokens

TIER, HOLD_TIER = "budget", "budget-hold"
JOBS, PAID_FOR = 50, 10


def prompt(n: int) -> str:
    return f"Summarise freight manifest number {n:03d} for the yard."  # the same size for every n


@pytest.fixture(scope="module")
def workers(stack: Stack) -> Iterator[list[str]]:
    """Four single-process workers for the budget tier, for the module."""
    names = stack.start_workers("worker-budget", 4, [TIER])
    yield names
    for name in names:
        stack.processes.stop(name)


@pytest.fixture
def engine(stack: Stack) -> Iterator[Engine]:
    engine = make_engine(stack.settings)
    yield engine
    engine.dispose()


@pytest.fixture
def ledger(stack: Stack, engine: Engine) -> BudgetControl:
    """The test's own view of the budgets (the workers' Redis and database)."""
    return BudgetControl(
        Redis.from_url(stack.settings.redis_url), RedisKeys(stack.settings.key_prefix), engine, lambda e: None
    )


def call_estimate_usd(stack: Stack, tier: str) -> float:
    """What the middleware reserves for one of these jobs."""
    alias = stack.settings.tiers[tier].models[0]
    request = ChatRequest.model_validate(
        {"messages": [{"role": "user", "content": prompt(0)}], "max_tokens": 16}
    )
    route = Route(alias, stack.settings.models[alias])
    return max_charge(route, request, estimate_prompt_tokens(request)).nano_usd / NANO


def tenant_with_budget(
    stack: Stack, engine: Engine, tier: str, limit_usd: float
) -> tuple[str, str, BudgetTerms]:
    """A new tenant, a key of it and a hard budget on ``tier`` (fail when exhausted)."""
    with session_scope(engine) as session:
        tenant = create_tenant(session, f"budget-{uuid.uuid4().hex[:8]}")
        session.flush()
        secret = create_key(session, tenant.id, {"submit", "read"})
        body = BudgetCreate.model_validate({"limit_usd": limit_usd, "tier": tier, "period": "day"})
        budget = manage.create_budget(session, stack.settings, tenant.id, body, CLI)
        terms = BudgetTerms.of(budget, "UTC")
    return tenant.id, secret, terms


def emulator_calls(stack: Stack, model: str) -> int:
    return int(stack.emulator("GET", "/emulator/stats").get("by_model", {}).get(model, 0))


def spent_in_db(engine: Engine, tenant_id: str) -> float:
    with Session(engine) as session:
        total = session.exec(
            select(func.sum(col(Usage.cost_usd))).where(col(Usage.tenant_id) == tenant_id)
        ).one()
    return float(total or 0.0)


def run_all(stack: Stack, key: str, numbers: range) -> list[dict[str, Any]]:
    """Submit the jobs at once (one thread each, up to 25), then wait for every one to end."""
    with ThreadPoolExecutor(max_workers=25) as pool:
        ids = list(pool.map(lambda n: stack.submit(TIER, prompt(n), key=key, max_tokens=16)["id"], numbers))
    return [stack.wait_final(job_id, key) for job_id in ids]


def outcome(jobs: list[dict[str, Any]]) -> tuple[int, int]:
    succeeded = sum(job["status"] == "succeeded" for job in jobs)
    refused = sum(job["status"] == "failed" and job["error"]["code"] == "budget_exceeded" for job in jobs)
    return succeeded, refused


@pytest.mark.usefixtures("workers")
def test_fifty_concurrent_jobs_on_four_workers_spend_no_more_than_the_budget(
    e2e: Stack, engine: Engine
) -> None:
    estimate = call_estimate_usd(e2e, TIER)
    limit = PAID_FOR * estimate
    tenant_id, key, _ = tenant_with_budget(e2e, engine, TIER, limit)
    before = emulator_calls(e2e, "emu-budget")

    jobs = run_all(e2e, key, range(JOBS))

    calls = emulator_calls(e2e, "emu-budget") - before
    succeeded, refused = outcome(jobs)
    assert PAID_FOR - 1 <= calls <= PAID_FOR + 1, calls  # never more than the budget pays for
    assert (succeeded, refused) == (calls, JOBS - calls)
    actual = max(job["cost_usd"] for job in jobs if job["status"] == "succeeded")
    assert spent_in_db(engine, tenant_id) <= limit + (estimate - actual) + 1e-12
    assert all(job["attempts"] <= 1 for job in jobs)  # budget_exceeded is not retried


@pytest.mark.usefixtures("workers")
def test_the_budget_holds_after_its_redis_state_is_lost(
    e2e: Stack, engine: Engine, ledger: BudgetControl
) -> None:
    estimate = call_estimate_usd(e2e, TIER)
    tenant_id, key, budget = tenant_with_budget(e2e, engine, TIER, 6 * estimate)
    assert outcome(run_all(e2e, key, range(3))) == (3, 0)
    # Every budget counter, reservation and marker gone, as a FLUSHALL or an eviction leaves them
    # (the stack's queues are kept: other tests share this Redis).
    redis = Redis.from_url(e2e.settings.redis_url)
    lost = list(redis.scan_iter(f"{e2e.settings.key_prefix}:budget:*"))
    assert lost and redis.delete(*lost) == len(lost)

    assert outcome(run_all(e2e, key, range(3, 9))) == (3, 3)  # 3 paid before, 3 more fit
    [figures] = ledger.figures([budget])
    assert abs(figures.spent.usd - spent_in_db(engine, tenant_id)) < 1e-9  # rebuilt from the database


def test_a_killed_workers_reservation_is_released_when_its_lease_expires(
    e2e: Stack, engine: Engine, ledger: BudgetControl
) -> None:
    estimate = call_estimate_usd(e2e, HOLD_TIER)
    tenant_id, key, budget = tenant_with_budget(e2e, engine, HOLD_TIER, 1.5 * estimate)  # room for one call
    e2e.emulator(
        "POST", "/emulator/faults", json={"model": "emu-budget-hold", "responses": [], "latency_ms": 4000}
    )
    [worker] = e2e.start_workers("worker-budget-doomed", 1, [HOLD_TIER])
    job = e2e.submit(HOLD_TIER, prompt(0), key=key, max_tokens=16)
    deadline = time.monotonic() + 30
    while ledger.figures([budget])[0].reserved.nano_usd == 0:  # the call is in flight
        assert time.monotonic() < deadline, "the job never reserved"
        time.sleep(0.05)
    e2e.kill(worker)
    killed_at = time.monotonic()

    held = ledger.figures([budget])[0]
    assert held.reserved.nano_usd > 0 and held.spent.nano_usd == 0  # still held: nobody settled
    settings = e2e.settings
    bound = settings.providers["emulator"].timeout_s + settings.lease_s
    while ledger.figures([budget])[0].reserved.nano_usd > 0:
        assert time.monotonic() - killed_at < bound + 5, "the reservation outlived its lease"
        time.sleep(0.2)
    assert time.monotonic() - killed_at > 2  # released when the lease ran out, not before
    # The reconciler records the lost attempt at its most (docs/operations.md) and counts it.
    while spent_in_db(engine, tenant_id) == 0:
        assert time.monotonic() - killed_at < bound + 10, "the lost attempt was never recorded"
        time.sleep(0.2)
    time.sleep(0.5)
    assert abs(ledger.figures([budget])[0].spent.usd - spent_in_db(engine, tenant_id)) < 1e-9
    e2e.post(f"/v1/jobs/{job['id']}/cancel", key)  # no worker serves the tier any more
