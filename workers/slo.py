"""The figures of ``GET /v1/slo``: each tier's objectives measured on the jobs table.

Per tier, one aggregate over the jobs that ended in the objective's window (``ix_jobs_finished``
bounds it) counts, for the window and each burn window (6h, 1h, 30m, 5m), the jobs that ended,
those that failed, the live jobs that succeeded and those of them slower than the latency
threshold; then one nearest-rank p95 per window that has live jobs, read from the top 5 % only
(``ORDER BY duration DESC OFFSET k LIMIT 1``, a bounded sort), the same SQL on PostgreSQL and
SQLite. End-to-end time is ``finished_at - created_at``: what the caller waits.

What counts (docs/observability.md, "SLOs and alerts"): canceled jobs are not events; a job
failed by the caller's own doing (its budget, a kill switch, a request the model refuses as too
long or malformed) is neither good nor bad; every other failure is a bad event. Latency counts
live jobs only: the batch lane may wait by design.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.engine import Connection, Engine

from schemas.catalog import TierConfig
from schemas.slo import (
    LATENCY_QUANTILE,
    SloBudget,
    SloObjectiveReport,
    SloObjectives,
    SloReport,
    SloTierReport,
    SloWindow,
)
from workers.store import JOBS

# The burn windows, shortest last; "slo" (the objective's own window) comes first.
BURN_WINDOWS = (("6h", 6 * 3600), ("1h", 3600), ("30m", 1800), ("5m", 300))
# Multi-window burn-rate alerts (Google SRE workbook): a long window and its short companion
# both over the rate. 14.4 over 1h spends 2 % of a 30-day budget; 6 over 6h spends 5 %.
BURN_ALERTS = ((("1h", "5m"), 14.4), (("6h", "30m"), 6.0))
# Failures of the caller's own making: not the platform's errors (infra/prometheus/alerts.yml
# excludes the same codes).
CALLER_ERRORS = (
    "budget_exceeded",
    "kill_switch",
    "context_length_exceeded",
    "provider_bad_request",
    "exceeds_rate_limit",
)
_ENDED = ("succeeded", "failed")


def slo_report(
    engine: Engine, tiers: dict[str, TierConfig], tenant_id: str | None, now: datetime | None = None
) -> SloReport:
    """Every tier with objectives, over ``tenant_id``'s jobs (None: every tenant's)."""
    at = (now or datetime.now(UTC)).astimezone(UTC)
    with engine.connect() as connection:
        reports = [
            tier_report(connection, name, tier.slo, tenant_id, at)
            for name, tier in tiers.items()
            if tier.slo is not None
        ]
    scope: Literal["tenant", "all"] = "all" if tenant_id is None else "tenant"
    return SloReport(at=at, scope=scope, tenant_id=tenant_id, tiers=reports)


def tier_report(
    connection: Connection, tier: str, slo: SloObjectives, tenant_id: str | None, now: datetime
) -> SloTierReport:
    """One tier's objectives at ``now``."""
    windows = (("slo", slo.window_s), *BURN_WINDOWS)
    counts = _counts(connection, tier, slo, tenant_id, now, windows)
    objectives = []
    if slo.latency_p95_s is not None:
        p95 = {name: _p95(connection, tier, tenant_id, now, s, counts[f"live_{name}"]) for name, s in windows}
        rows = [
            _window(name, s, counts[f"live_{name}"], counts[f"slow_{name}"], 1 - LATENCY_QUANTILE, p95[name])
            for name, s in windows
        ]
        objectives.append(_objective("latency", slo.latency_p95_s, LATENCY_QUANTILE, p95["slo"], rows))
    if slo.error_rate is not None:
        rows = [
            _window(name, s, counts[f"ended_{name}"], counts[f"failed_{name}"], slo.error_rate)
            for name, s in windows
        ]
        objectives.append(_objective("errors", slo.error_rate, 1 - slo.error_rate, rows[0].bad_ratio, rows))
    return SloTierReport(tier=tier, window_s=slo.window_s, objectives=objectives)


def _duration(dialect: str) -> Any:
    """Seconds from submission to the end, in SQL."""
    if dialect == "postgresql":
        return func.extract("epoch", JOBS.c.finished_at - JOBS.c.created_at)
    # SQLite keeps timestamps as text (schemas/columns.py); julianday reads them in days.
    return (func.julianday(JOBS.c.finished_at) - func.julianday(JOBS.c.created_at)) * 86_400.0


def _scope(tier: str, tenant_id: str | None, since: datetime, now: datetime) -> list[Any]:
    where = [
        JOBS.c.tier == tier,
        JOBS.c.finished_at > since,
        JOBS.c.finished_at <= now,
        JOBS.c.status.in_(_ENDED),
    ]
    return where if tenant_id is None else [*where, JOBS.c.tenant_id == tenant_id]


def _counts(
    connection: Connection,
    tier: str,
    slo: SloObjectives,
    tenant_id: str | None,
    now: datetime,
    windows: tuple[tuple[str, int], ...],
) -> dict[str, int]:
    """Per window: ended and failed jobs (caller errors left out), live successes and slow ones."""
    platform_fault = func.coalesce(JOBS.c.error_code, "").not_in(CALLER_ERRORS)
    counted = or_(JOBS.c.status == "succeeded", platform_fault)
    failed = and_(JOBS.c.status == "failed", platform_fault)
    live = and_(JOBS.c.status == "succeeded", JOBS.c.priority == "live")
    conditions = {"ended": counted, "failed": failed, "live": live}
    if slo.latency_p95_s is not None:
        conditions["slow"] = and_(live, _duration(connection.dialect.name) > slo.latency_p95_s)
    columns = []
    for name, seconds in windows:
        inside = JOBS.c.finished_at > now - timedelta(seconds=seconds)
        for label, condition in conditions.items():
            columns.append(func.sum(case((and_(inside, condition), 1), else_=0)).label(f"{label}_{name}"))
    since = now - timedelta(seconds=max(seconds for _, seconds in windows))
    row = connection.execute(select(*columns).where(*_scope(tier, tenant_id, since, now))).mappings().one()
    return {key: int(value or 0) for key, value in row.items()}


def _p95(
    connection: Connection, tier: str, tenant_id: str | None, now: datetime, seconds: int, live: int
) -> float | None:
    """The nearest-rank p95 of the window's live successes (``live`` of them), in seconds."""
    if live == 0:
        return None
    # Values ranked above the p95 one; rounded first so 0.95 x 60 is 57, not 57.000000001.
    above = live - math.ceil(round(LATENCY_QUANTILE * live, 9))
    duration = _duration(connection.dialect.name)
    where = [
        *_scope(tier, tenant_id, now - timedelta(seconds=seconds), now),
        JOBS.c.status == "succeeded",
        JOBS.c.priority == "live",
    ]
    query = select(duration).where(*where).order_by(duration.desc()).offset(above).limit(1)
    value = connection.execute(query).scalar()
    # Milliseconds: SQLite's julianday difference is exact to about 50 microseconds only.
    return None if value is None else round(float(value), 3)


def _window(
    name: str, seconds: int, events: int, bad: int, allowed: float, p95: float | None = None
) -> SloWindow:
    ratio = bad / events if events else None
    burn = None if ratio is None else round(ratio / allowed, 6)
    rounded = None if ratio is None else round(ratio, 6)
    return SloWindow(
        window=name, seconds=seconds, events=events, bad=bad, bad_ratio=rounded, burn_rate=burn, p95_s=p95
    )


def _objective(
    kind: Any, target: float, good_target: float, current: float | None, windows: list[SloWindow]
) -> SloObjectiveReport:
    whole = windows[0]
    allowed = (1 - good_target) * whole.events
    remaining = allowed - whole.bad
    budget = SloBudget(
        allowed=round(allowed, 6),
        consumed=whole.bad,
        remaining=round(remaining, 6),
        remaining_ratio=round(remaining / allowed, 6) if allowed else None,
    )
    met = None if current is None else current <= target
    return SloObjectiveReport(
        objective=kind,
        target=target,
        good_ratio_target=good_target,
        current=current,
        met=met,
        state=_state(whole.events, remaining, windows),
        budget=budget,
        windows=windows,
    )


def _state(events: int, remaining: float, windows: list[SloWindow]) -> Any:
    """burning while a burn-rate alert would fire (it says what is happening now), else
    exhausted once the budget is overspent, else ok."""
    if events == 0:
        return "no_data"
    burn = {window.window: window.burn_rate or 0.0 for window in windows}
    if any(all(burn[name] >= rate for name in pair) for pair, rate in BURN_ALERTS):
        return "burning"
    return "exhausted" if remaining < 0 else "ok"
