"""The SQL behind the dashboard: every query bounded and served by an index.

``tenant_id`` None means every tenant (a platform admin's view). How each stays cheap with any
number of jobs (docs/observability.md, "Dashboard"):

- jobs ended recently: ``ix_jobs_finished`` over the window, at most ``SAMPLE`` rows;
- jobs submitted: ``ix_jobs_tenant_created`` per tenant (every tenant's id listed, up to
  ``MAX_TENANTS``: the jobs table has no index on ``created_at`` alone);
- provider calls: a tenant's through ``ix_usage_tenant_created``; every tenant's are the newest
  ``SAMPLE`` usage rows by primary key, then kept if inside the window;
- latest failed jobs: among the newest ``SAMPLE`` jobs (by ``finished_at``, or the tenant's by
  ``created_at``); dead letters: ``ix_webhook_deliveries_due`` counted up to ``COUNT_CAP``;
- today's spend and cache savings: the hourly rollups (their unique key leads with tenant, hour).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from schemas.tables import Tenant, WebhookDelivery
from workers.store import JOBS
from workers.usage_rollups import ROLLUPS
from workers.usage_sources import USAGE

SAMPLE = 10_000
MAX_TENANTS = 2_000
COUNT_CAP = 10_000
FAILED_SHOWN = 10
TENANTS: Table = Tenant.__table__  # type: ignore[attr-defined]
DELIVERIES: Table = WebhookDelivery.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Scope:
    """Whose figures: one tenant's, or every tenant's (``tenant_id`` None)."""

    tenant_id: str | None

    def where(self, table: Table) -> list[ColumnElement[bool]]:
        return [] if self.tenant_id is None else [table.c.tenant_id == self.tenant_id]


def ended_jobs(connection: Connection, scope: Scope, since: datetime) -> list[Any]:
    """(status, error_code, finished_at) of the newest jobs that ended since ``since``."""
    query = (
        select(JOBS.c.status, JOBS.c.error_code, JOBS.c.finished_at)
        .where(JOBS.c.finished_at >= since, *scope.where(JOBS))
        .order_by(JOBS.c.finished_at.desc())
        .limit(SAMPLE)
    )
    return list(connection.execute(query).all())


def submitted_jobs(connection: Connection, scope: Scope, since: datetime) -> int | None:
    """Jobs created since ``since``; None when every tenant's are asked and they are too many."""
    tenants = [scope.tenant_id] if scope.tenant_id is not None else _tenant_ids(connection)
    if tenants is None:
        return None
    query = select(func.count()).where(JOBS.c.tenant_id.in_(tenants), JOBS.c.created_at >= since)
    return int(connection.execute(query).scalar_one())


def _tenant_ids(connection: Connection) -> list[str] | None:
    ids = connection.execute(select(TENANTS.c.id).limit(MAX_TENANTS + 1)).scalars().all()
    return None if len(ids) > MAX_TENANTS else list(ids)


def recent_calls(connection: Connection, scope: Scope, since: datetime) -> list[Any]:
    """(model, provider, latency_ms, outcome) of the newest provider calls since ``since``."""
    columns = (USAGE.c.model, USAGE.c.provider, USAGE.c.latency_ms, USAGE.c.outcome)
    if scope.tenant_id is not None:
        query = (
            select(*columns)
            .where(USAGE.c.tenant_id == scope.tenant_id, USAGE.c.created_at >= since)
            .order_by(USAGE.c.created_at.desc())
            .limit(SAMPLE)
        )
    else:  # no index on created_at alone: the newest rows by id, then the window
        newest = select(*columns, USAGE.c.created_at).order_by(USAGE.c.id.desc()).limit(SAMPLE).subquery()
        query = select(newest.c.model, newest.c.provider, newest.c.latency_ms, newest.c.outcome).where(
            newest.c.created_at >= since
        )
    return list(connection.execute(query).all())


def failed_jobs(connection: Connection, scope: Scope) -> list[dict[str, Any]]:
    """The latest failed jobs among the newest ``SAMPLE`` (ended, or the tenant's created)."""
    columns = [JOBS.c[name] for name in ("id", "tenant_id", "tier", "model", "status")]
    columns += [JOBS.c.error_code, JOBS.c.error_message, JOBS.c.finished_at]
    if scope.tenant_id is not None:
        order = JOBS.c.created_at.desc()
        newest = select(*columns).where(*scope.where(JOBS)).order_by(order).limit(SAMPLE).subquery()
    else:
        order = JOBS.c.finished_at.desc()
        filled = JOBS.c.finished_at.is_not(None)
        newest = select(*columns).where(filled).order_by(order).limit(SAMPLE).subquery()
    query = (
        select(newest)
        .where(newest.c.status == "failed")
        .order_by(newest.c.finished_at.desc())
        .limit(FAILED_SHOWN)
    )
    return [dict(row) for row in connection.execute(query).mappings()]


def dead_letters(connection: Connection, scope: Scope) -> int:
    """Webhook deliveries that gave up, counted up to ``COUNT_CAP``."""
    capped = (
        select(DELIVERIES.c.id)
        .where(DELIVERIES.c.status == "failed", *scope.where(DELIVERIES))
        .limit(COUNT_CAP)
        .subquery()
    )
    return int(connection.execute(select(func.count()).select_from(capped)).scalar_one())


def today_rollups(connection: Connection, scope: Scope, day_start: datetime) -> dict[str, float]:
    """Today's sums from the hourly rollups: jobs, calls, cost, cache hits and savings."""
    figures = ("jobs", "calls", "cost_usd", "cache_hits", "cache_savings_usd")
    tenants = [scope.tenant_id] if scope.tenant_id is not None else _tenant_ids(connection)
    where = [ROLLUPS.c.hour >= day_start]
    if tenants is not None:  # past MAX_TENANTS, a scan of today's rows (the rollups are small)
        where.append(ROLLUPS.c.tenant_id.in_(tenants))
    query = select(*(func.coalesce(func.sum(ROLLUPS.c[name]), 0) for name in figures)).where(*where)
    row = connection.execute(query).one()
    return {name: float(value) for name, value in zip(figures, row, strict=True)}


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile of sorted ``values`` (0 for none)."""
    if not values:
        return 0.0
    rank = max(1, -(-int(share * 1000) * len(values) // 1000))  # ceil(share * n) in integers
    return round(values[min(rank, len(values)) - 1], 1)


def model_latencies(calls: list[Any]) -> list[dict[str, Any]]:
    """Per (model, provider): calls, p50/p95/p99 latency, errors and provider 429s."""
    grouped: dict[tuple[str, str], list[Any]] = {}
    for call in calls:
        grouped.setdefault((call.model, call.provider), []).append(call)
    rows = []
    for (model, provider), group in sorted(grouped.items()):
        latencies = sorted(float(call.latency_ms) for call in group)
        outcomes = Counter(call.outcome for call in group)
        rows.append(
            {
                "model": model,
                "provider": provider,
                "calls": len(group),
                "p50_ms": percentile(latencies, 0.50),
                "p95_ms": percentile(latencies, 0.95),
                "p99_ms": percentile(latencies, 0.99),
                "errors": len(group) - outcomes["ok"],
                "rate_limited": outcomes["rate_limited"],
            }
        )
    return rows


def window_start(now: datetime, seconds: float) -> datetime:
    return now - timedelta(seconds=seconds)
