"""Recompute the hourly usage rollups from the usage rows and jobs: the backfill.

For data written before the rollups existed, or to check them: the hours in the range are
deleted and summed again from the rows, in one transaction, so running it twice gives the same
rollups. Run it over hours no call is settling in (the past); a call settling in an hour being
rebuilt may be counted twice or not at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.engine import Connection, Engine

from workers.usage_rollups import FIGURES, KEY, ROLLUPS, add, hour_of
from workers.usage_sources import calls_select, ended_select

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
CHUNK = 5_000
# The raw source's dimensions that make up the rollups' key, after tenant and hour.
_DIMENSIONS = ("hour", "tier", "model", "provider", "api_key", "priority")


def rebuild_rollups(
    engine: Engine, start: datetime | None = None, end: datetime | None = None, tenant_id: str | None = None
) -> int:
    """Rebuild the rollups of the whole hours covering ``[start, end)`` (default: all time),
    of one tenant or all; the number of rollup rows written."""
    start = hour_of(start) if start else EARLIEST
    end = _hour_up(end) if end else hour_of(datetime.now(UTC)) + timedelta(hours=1)
    written = 0
    with engine.begin() as connection:
        condition = [ROLLUPS.c.hour >= start, ROLLUPS.c.hour < end]
        if tenant_id is not None:
            condition.append(ROLLUPS.c.tenant_id == tenant_id)
        connection.execute(delete(ROLLUPS).where(*condition))
        for chunk in _chunks(_contributions(connection, start, end, tenant_id)):
            add(connection, chunk)
            written += len(chunk)
    return written


def _hour_up(at: datetime) -> datetime:
    hour = hour_of(at)
    return hour if hour == at else hour + timedelta(hours=1)


def _contributions(
    connection: Connection, start: datetime, end: datetime, tenant_id: str | None
) -> Iterator[dict[str, Any]]:
    """Per tenant and rollup key: the calls' sums, then the ended jobs' sums."""
    dialect = connection.dialect.name
    for build in (calls_select, ended_select):
        statement = build(tenant_id, start, end, _DIMENSIONS, dialect)
        for row in connection.execute(statement).mappings():
            yield _contribution(row, tenant_id)


def _contribution(row: Any, tenant_id: str | None) -> dict[str, Any]:
    values = [row[f"g{index}"] for index in range(len(_DIMENSIONS))]
    contribution = dict(zip(KEY[1:], values, strict=True))
    contribution["tenant_id"] = tenant_id or row["g_tenant"]
    contribution["api_key_id"] = contribution["api_key_id"] or ""
    contribution.update({name: row[name] or 0 for name in FIGURES if name in row})
    return contribution


def _chunks(items: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
