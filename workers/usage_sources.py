"""The SQL behind a usage report: grouped sums from the hourly rollups, or from the raw rows.

- rollup: one GROUP BY over ``usage_hourly`` for the tenant and range (its unique key leads
  with tenant and hour, so the range is one index scan). Answers ``day``, ``hour``, ``tier``,
  ``model``, ``provider``, ``api_key`` and ``priority``.
- raw: the usage rows (``ix_usage_tenant_created``) joined to their jobs by primary key, for
  calls, tokens and cost; and the jobs that ended in the range (``ix_jobs_finished``) for jobs
  and cache hits. Answers every dimension, ``batch`` and ``metadata.<key>`` too.

Each select yields ``g0..gN`` (the group values, in ``group_by`` order), every figure (0 where
its source has none) and ``g_tenant``; ``tenant_id`` None (the rollups' rebuild): every tenant's.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, Table, and_, case, func, literal_column, select
from sqlalchemy.sql.elements import ColumnElement

from schemas.tables import Usage
from schemas.usage_reports import METADATA_PREFIX
from workers.store import JOBS
from workers.usage_buckets import truncate
from workers.usage_rollups import FIGURES, FINAL_STATES, ROLLUPS

USAGE: Table = Usage.__table__  # type: ignore[attr-defined]
ROLLUP_DIMENSIONS = frozenset(("day", "hour", "tier", "model", "provider", "api_key", "priority"))
# A dimension of the jobs table, for the raw source (day and hour come from a timestamp).
_JOB_DIMENSIONS = {
    "tier": JOBS.c.tier,
    "model": func.coalesce(JOBS.c.model, ""),
    "provider": func.coalesce(JOBS.c.provider, ""),
    "api_key": func.coalesce(JOBS.c.api_key_id, ""),
    "priority": JOBS.c.priority,
    "batch": JOBS.c.batch_id,
}


def rollup_select(
    tenant_id: str | None, start: Any, end: Any, group_by: tuple[str, ...], dialect: str
) -> Select[Any]:
    """Figures per group from the rollups of hours in ``[start, end)``."""
    columns = {
        "day": truncate(ROLLUPS.c.hour, "day", dialect),
        "hour": ROLLUPS.c.hour,
        "api_key": ROLLUPS.c.api_key_id,
        **{name: ROLLUPS.c[name] for name in ("tier", "model", "provider", "priority")},
    }
    groups = [columns[name] for name in group_by]
    figures = [func.sum(ROLLUPS.c[name]).label(name) for name in FIGURES]
    query = select(*_labelled(groups), *figures).where(ROLLUPS.c.hour >= start, ROLLUPS.c.hour < end)
    return _scoped(query, ROLLUPS.c.tenant_id, tenant_id, len(groups))


def calls_select(
    tenant_id: str | None, start: Any, end: Any, group_by: tuple[str, ...], dialect: str
) -> Select[Any]:
    """Calls, tokens and cost per group from the usage rows created in ``[start, end)``."""
    own = {"tier": USAGE.c.tier, "model": USAGE.c.model, "provider": USAGE.c.provider}
    groups = [
        own[name] if name in own else _job_dimension(name, USAGE.c.created_at, dialect) for name in group_by
    ]
    query = (
        select(
            *_labelled(groups),
            *_figures(
                calls=func.count(USAGE.c.id),
                prompt_tokens=func.sum(USAGE.c.prompt_tokens),
                completion_tokens=func.sum(USAGE.c.completion_tokens),
                cost_usd=func.sum(USAGE.c.cost_usd),
            ),
        )
        .select_from(USAGE.join(JOBS, JOBS.c.id == USAGE.c.job_id))
        .where(USAGE.c.created_at >= start, USAGE.c.created_at < end)
    )
    return _scoped(query, USAGE.c.tenant_id, tenant_id, len(groups))


def ended_select(
    tenant_id: str | None, start: Any, end: Any, group_by: tuple[str, ...], dialect: str
) -> Select[Any]:
    """Jobs, cache hits and savings per group from the jobs that ended in ``[start, end)``."""
    groups = [_job_dimension(name, JOBS.c.finished_at, dialect) for name in group_by]
    hit = JOBS.c.cache["hit"].as_string().is_not(None)
    saved = func.coalesce(JOBS.c.cache["saved_usd"].as_float(), 0.0)
    query = select(
        *_labelled(groups),
        *_figures(
            jobs=func.count(),
            cache_hits=func.sum(case((hit, 1), else_=0)),
            cache_savings_usd=func.sum(case((hit, saved), else_=0.0)),
        ),
    ).where(and_(JOBS.c.status.in_(FINAL_STATES), JOBS.c.finished_at >= start, JOBS.c.finished_at < end))
    return _scoped(query, JOBS.c.tenant_id, tenant_id, len(groups))


def _job_dimension(name: str, at: Any, dialect: str) -> ColumnElement[Any]:
    if name in ("day", "hour"):
        return truncate(at, name, dialect)
    if name.startswith(METADATA_PREFIX):
        return JOBS.c["metadata"][name.removeprefix(METADATA_PREFIX)].as_string()
    return _JOB_DIMENSIONS[name]


def _figures(**sums: Any) -> list[Any]:
    """Every figure in FIGURES order, 0 where this source has none: the sources stack (UNION ALL)."""
    return [sums.get(name, literal_column("0")).label(name) for name in FIGURES]


def _labelled(groups: list[Any]) -> list[Any]:
    return [group.label(f"g{index}") for index, group in enumerate(groups)]


def _scoped(query: Select[Any], tenant: Any, tenant_id: str | None, width: int) -> Select[Any]:
    """``query`` for one tenant, or (``tenant_id`` None, the rebuild) for all; grouped by tenant
    (``g_tenant``, last) either way, so the rebuild stacks one shape."""
    if tenant_id is not None:
        query = query.where(tenant == tenant_id)
    query = query.add_columns(tenant.label("g_tenant")).group_by(literal_column("g_tenant"))
    # By the output names: an expression with parameters (a metadata key, a bucket) would be
    # different SQL text in SELECT and GROUP BY, which PostgreSQL refuses.
    return query.group_by(*(literal_column(f"g{index}") for index in range(width)))
