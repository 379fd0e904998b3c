"""The budget ledger: reserve a call's maximum cost before it, settle to what it cost after.

Each budget period has a counter in Redis (spent and reserved, in nano-dollars and tokens)
and a ZSET of its reservations scored by expiry. ``reserve.lua`` checks spent + reserved +
this call against the limits of *every* budget that applies and takes all the reservations,
or none, in one atomic step; so concurrency cannot overspend, only the estimate's error can.
A reservation expires on its own (a worker killed mid-call), released by the next script that
touches the budget. ``settle.lua`` drops the reservation and adds the actual cost.

A counter missing from Redis is never read as zero: the scripts answer ``missing`` and the
ledger rebuilds it from the usage table (workers/budgets/rebuild.py), then tries again.
Settling happens after the attempt's usage row is committed, so a counter rebuilt at any
moment includes every call already settled in the database; a settle that finds its counter
missing adds nothing (the rebuild reads the call from the database instead).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from redis import Redis
from sqlalchemy.engine import Engine

from workers.budgets.estimate import Charge
from workers.budgets.periods import Period
from workers.budgets.rebuild import Rebuilder
from workers.budgets.terms import BudgetTerms
from workers.keys import RedisKeys

SCRIPT_DIR = Path(__file__).parent
MAX_REBUILDS = 8  # more lost counters in one reservation than budgets means Redis keeps losing them


def _source(name: str) -> str:
    return (SCRIPT_DIR / "counters.lua").read_text() + "\n" + (SCRIPT_DIR / f"{name}.lua").read_text()


@dataclass(frozen=True)
class Figures:
    """A budget period's counters: spent and reserved."""

    budget: BudgetTerms
    period: Period
    spent: Charge
    reserved: Charge


@dataclass(frozen=True)
class Hold:
    """Reservations one call took: the member name, and each budget with its reserved period."""

    member: str
    budgets: tuple[tuple[BudgetTerms, Period], ...]


@dataclass(frozen=True)
class Refusal:
    """The reservation was refused: the first budget without room for the call, and its figures."""

    figures: Figures


class Ledger:
    """Reserve, settle and read budgets in Redis, rebuilding lost counters from the database."""

    def __init__(
        self,
        redis: Redis,
        keys: RedisKeys,
        engine: Engine,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.engine = engine
        self.clock = clock
        self._scripts = {
            name: redis.register_script(_source(name)) for name in ("reserve", "settle", "figures", "init")
        }
        self.rebuilder = Rebuilder(redis, keys, engine, self._scripts["init"])

    def _counter_keys(self, budget: BudgetTerms, period: Period) -> list[str]:
        return [
            self.keys.budget_counter(budget.id, period.label),
            self.keys.budget_holds(budget.id, period.label),
        ]

    def reserve(
        self, budgets: Sequence[BudgetTerms], member: str, charge: Charge, hold_s: float
    ) -> Hold | Refusal:
        """Reserve ``charge`` against every budget, all or nothing, held ``hold_s`` at most."""
        now = self.clock()
        placed = [(budget, budget.period_at(now)) for budget in budgets]
        keys = [key for budget, period in placed for key in self._counter_keys(budget, period)]
        args: list[Any] = [_ms(now), member, _ms(now) + int(hold_s * 1000)]
        for budget, _ in placed:
            args += [_limit(budget.limit_nano), _limit(budget.limit_tokens), charge.nano_usd, charge.tokens]
        for _ in range(MAX_REBUILDS + len(placed)):
            reply = self._scripts["reserve"](keys=keys, args=args)
            outcome = _text(reply[0])
            if outcome == "ok":
                return Hold(member, tuple(placed))
            budget, period = placed[int(reply[1]) - 1]
            if outcome == "missing":
                self.rebuilder.rebuild(budget, period)
                continue
            values = [int(v) for v in reply[2:6]]
            return Refusal(
                Figures(budget, period, Charge(values[0], values[1]), Charge(values[2], values[3]))
            )
        raise RuntimeError("budget counters keep disappearing from Redis")

    def settle(self, hold: Hold, actual: Charge) -> list[Figures]:
        """Drop the hold's reservations and add ``actual`` to each budget's period of now.

        The figures after the settle, for the budgets whose counter exists (for thresholds).
        """
        now = self.clock()
        keys: list[str] = []
        args: list[Any] = [hold.member]
        current = [(budget, budget.period_at(now)) for budget, _ in hold.budgets]
        for (budget, reserved_in), (_, counted_in) in zip(hold.budgets, current, strict=True):
            keys += [
                *self._counter_keys(budget, reserved_in),
                self.keys.budget_counter(budget.id, counted_in.label),
            ]
            args += [actual.nano_usd, actual.tokens]
        reply = self._scripts["settle"](keys=keys, args=args)
        return [
            Figures(budget, period, Charge(int(reply[2 * i]), int(reply[2 * i + 1])), Charge(0, 0))
            for i, (budget, period) in enumerate(current)
            if int(reply[2 * i]) >= 0
        ]

    def figures(self, budgets: Sequence[BudgetTerms]) -> list[Figures]:
        """Each budget's spent and reserved in its current period, counters rebuilt if lost."""
        if not budgets:
            return []
        now = self.clock()
        placed = [(budget, budget.period_at(now)) for budget in budgets]
        keys = [key for budget, period in placed for key in self._counter_keys(budget, period)]
        for _ in range(MAX_REBUILDS + len(placed)):
            reply = self._scripts["figures"](keys=keys, args=[_ms(now)])
            if _text(reply[0]) == "missing":
                self.rebuilder.rebuild(*placed[int(reply[1]) - 1])
                continue
            values = [int(v) for v in reply[1:]]
            return [
                Figures(
                    budget, period, Charge(*values[4 * i : 4 * i + 2]), Charge(*values[4 * i + 2 : 4 * i + 4])
                )
                for i, (budget, period) in enumerate(placed)
            ]
        raise RuntimeError("budget counters keep disappearing from Redis")


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _limit(value: int | None) -> int:
    return -1 if value is None else value


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
