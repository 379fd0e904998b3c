"""What ``GET /v1/dashboard`` shows a caller (docs/observability.md, "Dashboard").

Whose figures: a platform admin's key sees every tenant's jobs, calls and spend; any other key
its own tenant's. The global figures (every tier's queue and drain time, every model's limiter
headroom) follow ``GET /v1/limits``'s rule (api/limits_view.py): admin and platform keys only.
The kill switches are those that can stop the caller's calls (every one for the platform admin).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from api.keys import Principal
from api.limits_view import caller_report
from api.services import Services
from schemas.dashboard import Dashboard
from schemas.spend_tables import Budget
from schemas.tables import utcnow
from workers import dashboard_queries as queries
from workers.budgets.manage import tenant_budgets, with_figures
from workers.cache.stats import KINDS
from workers.dashboard_queries import Scope

THROUGHPUT_WINDOW_S = 60.0
RECENT_WINDOW_S = 15 * 60.0  # latency percentiles, call outcomes, job failures
BUDGETS_SHOWN = 50
# Each (tenant) cache counter is one Redis hash; a platform view reads at most this many.
CACHE_TENANTS = 500


def dashboard(services: Services, principal: Principal) -> Dashboard:
    """Every figure of the dashboard for this key."""
    started = time.perf_counter()
    now = utcnow()
    scope = Scope(None if principal.is_platform_admin else principal.tenant_id)
    report = caller_report(services, principal)
    with services.engine.connect() as connection:
        ended = queries.ended_jobs(connection, scope, queries.window_start(now, RECENT_WINDOW_S))
        submitted = queries.submitted_jobs(connection, scope, queries.window_start(now, THROUGHPUT_WINDOW_S))
        calls = queries.recent_calls(connection, scope, queries.window_start(now, RECENT_WINDOW_S))
        failed = queries.failed_jobs(connection, scope)
        dead = queries.dead_letters(connection, scope)
        today = queries.today_rollups(
            connection, scope, now.replace(hour=0, minute=0, second=0, microsecond=0)
        )
    return Dashboard.model_validate(
        {
            "generated_at": now,
            "scope": "platform" if scope.tenant_id is None else "tenant",
            "tenant_id": principal.tenant_id,
            "global_figures": report["tiers"] is not None,
            "throughput": throughput(ended, submitted, now),
            "calls": call_figures(calls),
            "jobs": job_outcomes(ended),
            "cache": cache_figures(services, scope, today),
            "spend": {
                "today_usd": round(today["cost_usd"], 8),
                "calls_today": int(today["calls"]),
                "budgets": budgets(services, scope),
            },
            "queues": {"tiers": report["tiers"], "backlog": report["backlog"]},
            "limiter": {"tenant": report["tenant"], "models": report["models"]},
            "webhooks": {"dead_letters": dead, "capped": dead >= queries.COUNT_CAP},
            "kill_switches": report["kill_switches"],
            "failed_jobs": failed,
            "took_ms": round((time.perf_counter() - started) * 1000, 1),
        }
    )


def throughput(ended: list[Any], submitted: int | None, now: datetime) -> dict[str, Any]:
    """Jobs ended and submitted over the last minute, and per second."""
    since = queries.window_start(now, THROUGHPUT_WINDOW_S)
    statuses = Counter(row.status for row in ended if _aware(row.finished_at) >= since)
    count = sum(statuses.values())
    return {
        "window_s": THROUGHPUT_WINDOW_S,
        "ended": count,
        "submitted": submitted,
        "ended_per_s": round(count / THROUGHPUT_WINDOW_S, 3),
        "submitted_per_s": None if submitted is None else round(submitted / THROUGHPUT_WINDOW_S, 3),
        "ended_by_status": dict(statuses),
        "ended_per_minute": per_minute(ended, now),
    }


def per_minute(ended: list[Any], now: datetime) -> list[int]:
    """Jobs ended in each minute of the recent window, oldest first."""
    minutes = int(RECENT_WINDOW_S // 60)
    counts = [0] * minutes
    for row in ended:
        age = int((now - _aware(row.finished_at)).total_seconds() // 60)
        if 0 <= age < minutes:
            counts[minutes - 1 - age] += 1
    return counts


def call_figures(calls: list[Any]) -> dict[str, Any]:
    """Provider calls over the recent window: outcomes and latency percentiles per model."""
    outcomes = Counter(call.outcome for call in calls)
    errors = len(calls) - outcomes["ok"]
    return {
        "window_s": RECENT_WINDOW_S,
        "sample_limit": queries.SAMPLE,
        "capped": len(calls) >= queries.SAMPLE,
        "calls": len(calls),
        "errors": errors,
        "rate_limited": outcomes["rate_limited"],
        "error_rate": _rate(errors, len(calls)),
        "rate_limited_rate": _rate(outcomes["rate_limited"], len(calls)),
        "by_outcome": dict(outcomes),
        "models": queries.model_latencies(calls),
    }


def job_outcomes(ended: list[Any]) -> dict[str, Any]:
    """Jobs that ended over the recent window: how many failed, by error code."""
    failed = [row for row in ended if row.status == "failed"]
    return {
        "window_s": RECENT_WINDOW_S,
        "ended": len(ended),
        "failed": len(failed),
        "failure_rate": _rate(len(failed), len(ended)),
        "by_error_code": dict(Counter(row.error_code or "unknown" for row in failed)),
        "capped": len(ended) >= queries.SAMPLE,
    }


def cache_figures(services: Services, scope: Scope, today: dict[str, float]) -> dict[str, Any]:
    """Today's cache hits and savings (rollups), and the lookups counted in Redis."""
    counters = _cache_counters(services, scope)
    lookups = {}
    for kind in KINDS:
        hits, misses = int(counters[f"{kind}:hits"]), int(counters[f"{kind}:misses"])
        lookups[kind] = {"hits": hits, "misses": misses, "hit_rate": _rate(hits, hits + misses)}
    return {
        "jobs_today": int(today["jobs"]),
        "hits_today": int(today["cache_hits"]),
        "hit_rate_today": _rate(int(today["cache_hits"]), int(today["jobs"])),
        "savings_today_usd": round(today["cache_savings_usd"], 8),
        "lookups": lookups,
        "saved_usd": round(counters["saved_usd"], 8),
    }


def _cache_counters(services: Services, scope: Scope) -> dict[str, float]:
    """The cache's Redis counters (workers/cache/stats.py) summed over tiers and tenants."""
    tenants = [scope.tenant_id] if scope.tenant_id is not None else _some_tenants(services)
    with services.redis.pipeline(transaction=False) as pipe:
        for tenant in tenants:
            pipe.hgetall(services.keys.cache_stats(tenant))
        hashes = pipe.execute()
    totals: dict[str, float] = defaultdict(float)
    for fields in hashes:
        for name, value in fields.items():
            _, _, figure = name.decode().partition(":")  # <tier>:<kind>:hits|misses, <tier>:saved_usd
            totals[figure] += float(value)
    return totals


def budgets(services: Services, scope: Scope) -> list[Any]:
    """The budgets with their current period's figures (the tenant's, or the first of all)."""
    with Session(services.engine) as session:
        if scope.tenant_id is not None:
            rows = tenant_budgets(session, scope.tenant_id)[:BUDGETS_SHOWN]
        else:
            query = select(Budget).order_by(col(Budget.created_at)).limit(BUDGETS_SHOWN)
            rows = list(session.exec(query).all())
        return list(with_figures(session, services.budgets, rows)) if rows else []


def _some_tenants(services: Services) -> list[str]:
    with services.engine.connect() as connection:
        rows = connection.execute(queries.TENANTS.select().with_only_columns(queries.TENANTS.c.id))
        return [row.id for row in rows.fetchmany(CACHE_TENANTS)]


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
