"""The budget ledger on real Redis and the test databases: reserve, settle, expiry, rebuild."""

from __future__ import annotations

import threading
import time

import pytest
from budget_support import add_usage, control, terms, usage_rows  # noqa: F401 (fixture)
from redis import Redis
from sqlalchemy.engine import Engine

from schemas.settings import Settings
from workers.budgets.estimate import Charge, to_nano
from workers.budgets.ledger import Hold, Refusal
from workers.event import Event

CENTS_30 = Charge(to_nano(0.30), 300)


def flush(settings: Settings) -> None:
    """Every key of this test gone, as FLUSHALL leaves them (the test Redis's other keys, such as
    a running e2e stack's, are left alone)."""
    redis = Redis.from_url(settings.redis_url)
    lost = list(redis.scan_iter(f"{settings.key_prefix}:*"))
    assert lost and redis.delete(*lost) == len(lost)


def test_reserve_then_settle_moves_the_reservation_to_spent(
    settings: Settings, engine: Engine, tenant: str
) -> None:
    budgets = control(settings, engine, [])
    budget = terms(tenant)
    hold = budgets.reserve([budget], "job_1:1", CENTS_30, hold_s=60)
    assert isinstance(hold, Hold)
    [held] = budgets.figures([budget])
    assert (held.spent, held.reserved) == (Charge(0, 0), CENTS_30)
    budgets.settle(hold, Charge(to_nano(0.12), 120))
    [settled] = budgets.figures([budget])
    assert (settled.spent, settled.reserved) == (Charge(to_nano(0.12), 120), Charge(0, 0))


def test_a_call_that_does_not_fit_is_refused(settings: Settings, engine: Engine, tenant: str) -> None:
    budgets = control(settings, engine, [])
    budget = terms(tenant)
    for member in ("a", "b", "c"):
        assert isinstance(budgets.reserve([budget], member, CENTS_30, 60), Hold)
    refusal = budgets.reserve([budget], "d", CENTS_30, 60)  # 0.90 held: 0.30 more would pass $1
    assert isinstance(refusal, Refusal)
    assert refusal.figures.reserved.nano_usd == to_nano(0.90)


def test_reservation_is_all_or_nothing_across_budgets(
    settings: Settings, engine: Engine, tenant: str
) -> None:
    budgets = control(settings, engine, [])
    roomy, tight = terms(tenant), terms(tenant, limit_nano=None, limit_tokens=500)
    assert isinstance(budgets.reserve([roomy, tight], "a", CENTS_30, 60), Hold)
    refusal = budgets.reserve([roomy, tight], "b", CENTS_30, 60)  # tokens: 300 + 300 > 500
    assert isinstance(refusal, Refusal) and refusal.figures.budget == tight
    assert [f.reserved for f in budgets.figures([roomy, tight])] == [CENTS_30, CENTS_30]


def test_concurrent_reservations_never_pass_the_limit(
    settings: Settings, engine: Engine, tenant: str
) -> None:
    budgets = control(settings, engine, [])
    budget = terms(tenant, limit_nano=to_nano(1.0))
    granted: list[bool] = []
    barrier = threading.Barrier(12)

    def reserve(index: int) -> None:
        barrier.wait()
        for round_ in range(5):
            granted.append(
                isinstance(budgets.reserve([budget], f"{index}:{round_}", Charge(to_nano(0.1), 1), 60), Hold)
            )

    threads = [threading.Thread(target=reserve, args=(index,)) for index in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert granted.count(True) == 10
    assert budgets.figures([budget])[0].reserved.nano_usd == to_nano(1.0)


def test_an_expired_reservation_is_released(settings: Settings, engine: Engine, tenant: str) -> None:
    budgets = control(settings, engine, [])
    budget = terms(tenant, limit_nano=to_nano(0.5))
    assert isinstance(budgets.reserve([budget], "dead-worker", CENTS_30, hold_s=0.3), Hold)
    assert isinstance(budgets.reserve([budget], "other", CENTS_30, 60), Refusal)
    time.sleep(0.4)
    assert isinstance(budgets.reserve([budget], "other", CENTS_30, 60), Hold)
    assert budgets.figures([budget])[0].reserved == CENTS_30


@pytest.mark.usefixtures("usage_rows")
def test_counters_lost_with_redis_are_rebuilt_from_the_database(
    settings: Settings, engine: Engine, tenant: str
) -> None:
    budgets = control(settings, engine, [])
    tenant_wide, small_only = terms(tenant), terms(tenant, tier="small")
    key_budget = terms(tenant, api_key_id="key_1")
    add_usage(engine, tenant, 0.25, tokens=100, tier="small")
    add_usage(engine, tenant, 0.10, tokens=40, tier="retry", api_key_id="key_1")
    assert [f.spent for f in budgets.figures([tenant_wide, small_only, key_budget])] == [
        Charge(to_nano(0.35), 140),
        Charge(to_nano(0.25), 100),
        Charge(to_nano(0.10), 40),
    ]
    hold = budgets.reserve([tenant_wide], "x", CENTS_30, 60)
    assert isinstance(hold, Hold)
    budgets.settle(hold, Charge(to_nano(0.05), 5))  # not in the database: lost with Redis below
    flush(settings)
    add_usage(engine, tenant, 0.20, tokens=10)  # settled in the database after the flush
    assert budgets.figures([tenant_wide])[0].spent == Charge(to_nano(0.55), 150)


@pytest.mark.usefixtures("usage_rows")
def test_a_settle_against_a_lost_counter_adds_nothing_then_the_rebuild_counts_it(
    settings: Settings, engine: Engine, tenant: str
) -> None:
    budgets = control(settings, engine, [])
    budget = terms(tenant)
    hold = budgets.reserve([budget], "in-flight", CENTS_30, 60)
    assert isinstance(hold, Hold)
    flush(settings)
    add_usage(engine, tenant, 0.07)  # the in-flight call's usage row commits...
    budgets.settle(hold, Charge(to_nano(0.07), 10))  # ...then it settles: the counter is gone
    [figures] = budgets.figures([budget])
    assert figures.spent.nano_usd == to_nano(0.07) and figures.reserved.nano_usd == 0


def test_each_threshold_is_announced_once_under_concurrency(
    settings: Settings, engine: Engine, tenant: str
) -> None:
    events: list[Event] = []
    processes = [control(settings, engine, events) for _ in range(6)]  # six "workers"
    budget = terms(tenant)
    barrier = threading.Barrier(len(processes))

    def spend(index: int) -> None:
        barrier.wait()
        for round_ in range(3):
            hold = processes[index].reserve([budget], f"{index}:{round_}", Charge(to_nano(0.05), 1), 60)
            assert isinstance(hold, Hold)
            processes[index].settle(hold, Charge(to_nano(0.05), 1))

    threads = [threading.Thread(target=spend, args=(index,)) for index in range(len(processes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert processes[0].figures([budget])[0].spent.nano_usd == to_nano(0.90)
    assert sorted(event.data["threshold"] for event in events) == [0.5, 0.8]
    assert {event.type for event in events} == {"budget.threshold"}
    assert events[0].data["budget"]["id"] == budget.id
