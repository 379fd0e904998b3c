"""Soft thresholds: a ``budget.threshold`` event once per budget, threshold and period.

When a settle leaves a budget's spend at or past one of its thresholds (default 50 %, 80 %,
100 %), or a reservation is refused (the budget is exhausted: its 100 % mark), the process
that saw it sets a marker with ``SET NX`` (atomic: of any number of workers crossing at once,
one wins) that lives past the period's end, and only the winner emits the event, through the
tenant event stream and the webhooks (``Outcomes.emit``). The markers live in Redis alone: a
Redis that loses them may announce a threshold crossed before once more; receivers dedupe on
the event id, which is the same for the same budget, period and threshold.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime

from redis import Redis

from workers.budgets.ledger import Figures
from workers.budgets.rebuild import KEEP_AFTER_END
from workers.event import Event
from workers.keys import RedisKeys

EVENT_TYPE = "budget.threshold"
Emit = Callable[[Event], None]


def crossed(figures: Figures, exhausted: bool = False) -> list[float]:
    """The budget's thresholds its spend reached (all of them up to 100 % when ``exhausted``)."""
    share = 1.0 if exhausted else figures.budget.used_share(figures.spent.nano_usd, figures.spent.tokens)
    return [threshold for threshold in figures.budget.thresholds if share >= threshold]


def threshold_event(figures: Figures, threshold: float, exhausted: bool) -> Event:
    """The event of one crossed threshold; its id is the same for a budget, period and threshold."""
    budget, period = figures.budget, figures.period
    data = {
        "budget": budget.summary(period),
        "threshold": threshold,
        "spent_usd": figures.spent.usd,
        "spent_tokens": figures.spent.tokens,
        "exhausted": exhausted,
    }
    mark = f"{budget.id}:{period.label}:{threshold:g}".encode()
    event_id = f"evt_{hashlib.sha256(mark).hexdigest()[:32]}"  # fits the deliveries' event_id
    return Event(budget.tenant_id, EVENT_TYPE, data, id=event_id)


class ThresholdAnnouncer:
    """Emits each crossed threshold once, whichever process crosses it first."""

    def __init__(self, redis: Redis, keys: RedisKeys, emit: Emit, clock: Callable[[], datetime]) -> None:
        self.redis = redis
        self.keys = keys
        self.emit = emit
        self.clock = clock
        self._announced: set[str] = set()  # markers this process saw set: no round trip for them

    def check(self, figures: list[Figures], exhausted: bool = False) -> list[Event]:
        """Announce the thresholds ``figures`` reached that were not announced yet; the events sent."""
        candidates = [
            (f, t, self.keys.budget_threshold(f.budget.id, f.period.label, t))
            for f in figures
            for t in crossed(f, exhausted)
        ]
        candidates = [candidate for candidate in candidates if candidate[2] not in self._announced]
        if not candidates:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for f, _, marker in candidates:
            ttl = int((f.period.end + KEEP_AFTER_END - self.clock()).total_seconds())
            pipe.set(marker, "1", nx=True, ex=max(ttl, 1))
        if len(self._announced) > 10_000:
            self._announced.clear()
        sent = []
        for (f, threshold, marker), won in zip(candidates, pipe.execute(), strict=True):
            self._announced.add(marker)
            if won:
                event = threshold_event(f, threshold, exhausted)
                self.emit(event)
                sent.append(event)
        return sent
