"""Recompute the hourly usage rollups from the usage rows and jobs: the backfill.

For data written before the rollups existed, or to check them: the hours in the range are
deleted and summed again from the rows, in one transaction, so running it twice gives the same
rollups. Run it over hours no call is settling in (the past); a call settling in an hour being
rebuilt may be counted twice or not at all.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, union_all
from sqlalchemy.engine import Engine

from workers.usage_rollups import FIGURES, KEY, ROLLUPS, hour_of
from workers.usage_sources import calls_select, ended_select

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
# The raw source's dimensions that make up the rollups' key, after tenant and hour.
_DIMENSIONS = ("hour", "tier", "model", "provider", "api_key", "priority")


def rebuild_rollups(
    engine: Engine, start: datetime | None = None, end: datetime | None = None, tenant_id: str | None = None
) -> int:
    """Rebuild the rollups of the whole hours covering ``[start, end)`` (default: all time),
    of one tenant or all; the number of rollup rows written."""
    start = hour_of(start) if start else EARLIEST
    end = _hour_up(end) if end else hour_of(datetime.now(UTC)) + timedelta(hours=1)
    with engine.begin() as connection:
        condition = [ROLLUPS.c.hour >= start, ROLLUPS.c.hour < end]
        if tenant_id is not None:
            condition.append(ROLLUPS.c.tenant_id == tenant_id)
        connection.execute(delete(ROLLUPS).where(*condition))
        connection.execute(
            insert(ROLLUPS).from_select(
                [*KEY, *FIGURES], _sums(connection.dialect.name, start, end, tenant_id)
            )
        )
        # Counted, not the INSERT's rowcount: drivers need not report one for INSERT ... SELECT.
        return int(
            connection.execute(select(func.count()).select_from(ROLLUPS).where(*condition)).scalar_one()
        )


def _hour_up(at: datetime) -> datetime:
    hour = hour_of(at)
    return hour if hour == at else hour + timedelta(hours=1)


def _sums(dialect: str, start: datetime, end: datetime, tenant_id: str | None) -> Any:
    """One row per tenant and rollup key: the calls' sums and the ended jobs' sums, added up in SQL."""
    parts = [build(tenant_id, start, end, _DIMENSIONS, dialect) for build in (calls_select, ended_select)]
    stacked = union_all(*parts).subquery()
    keys = [stacked.c.g_tenant, *(stacked.c[f"g{index}"] for index in range(len(_DIMENSIONS)))]
    return select(*keys, *(func.sum(stacked.c[name]) for name in FIGURES)).group_by(*keys)
