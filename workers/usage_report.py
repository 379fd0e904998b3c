"""A tenant's usage and cost over a range, grouped: what ``GET /v1/usage`` and ``switchyard usage`` show.

The hourly rollups answer when every dimension is one they are keyed by and the range is whole
hours (the default, the current UTC month, is); otherwise the raw usage rows and jobs answer
(workers/usage_sources.py). Both give the same figures; ``source`` says which answered.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection, Engine

from schemas.spend_errors import InvalidGroupBy, InvalidUsageRange, TooManyUsageGroups, UsageRangeTooLong
from schemas.usage_reports import DIMENSIONS, FIGURES, METADATA_PREFIX, UsageFigures, UsageReport
from workers.usage_rollups import hour_of
from workers.usage_sources import ROLLUP_DIMENSIONS, calls_select, ended_select, rollup_select

MAX_SPAN = timedelta(days=400)
MAX_GROUPS = 50_000
_METADATA_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Dimensions whose '' in the rollups (and the raw source's coalesce) means "none": shown as null.
_NONE_WHEN_EMPTY = frozenset(("model", "provider", "api_key"))


@dataclass(frozen=True)
class UsageQuery:
    """One tenant's report over ``[start, end)`` (UTC), grouped by ``group_by``."""

    tenant_id: str
    start: datetime
    end: datetime
    group_by: tuple[str, ...]


def parse_group_by(values: Iterable[str]) -> tuple[str, ...]:
    """The dimensions named (repeated or comma-separated), in order, each once; 400 on an unknown one."""
    names: list[str] = []
    for value in values:
        for name in (part.strip() for part in value.split(",")):
            if name and name not in names:
                names.append(_checked_dimension(name))
    return tuple(names)


def _checked_dimension(name: str) -> str:
    if name in DIMENSIONS:
        return name
    key = name.removeprefix(METADATA_PREFIX)
    if name.startswith(METADATA_PREFIX) and _METADATA_KEY.fullmatch(key):
        return name
    known = ", ".join([*DIMENSIONS, "metadata.<key>"])
    raise InvalidGroupBy(f"Cannot group by {name!r}; group by any of {known}.", group_by=name[:100])


def make_query(
    tenant_id: str,
    start: datetime | None,
    end: datetime | None,
    group_by: Sequence[str] = (),
    now: datetime | None = None,
) -> UsageQuery:
    """The query, with the current UTC month for a bound not given; 400 on a range it refuses."""
    month_start, month_end = month_of(now or datetime.now(UTC))
    start, end = _utc(start) or month_start, _utc(end) or month_end
    if start >= end:
        raise InvalidUsageRange(
            f"from ({start.isoformat()}) must be before to ({end.isoformat()}).",
            **{"from": start.isoformat(), "to": end.isoformat()},
        )
    if end - start > MAX_SPAN:
        raise UsageRangeTooLong(
            f"A report spans at most {MAX_SPAN.days} days; ask for several.", max_days=MAX_SPAN.days
        )
    return UsageQuery(tenant_id, start, end, parse_group_by(group_by))


def month_of(at: datetime) -> tuple[datetime, datetime]:
    """The UTC month ``at`` falls in: its first instant and the next month's."""
    start = at.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return start, (start + timedelta(days=32)).replace(day=1)


def _utc(at: datetime | None) -> datetime | None:
    # A time given without a zone is read as UTC, the zone every bucket is in.
    if at is None:
        return None
    try:
        return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    except OverflowError as exc:  # e.g. 0001-01-01T00:00+05:00 is before year 1 in UTC
        raise InvalidUsageRange(f"{at.isoformat()} is out of range.") from exc


def source_for(query: UsageQuery) -> str:
    """``rollup`` when the rollups can answer exactly, else ``raw``."""
    whole_hours = hour_of(query.start) == query.start and hour_of(query.end) == query.end
    return "rollup" if whole_hours and ROLLUP_DIMENSIONS.issuperset(query.group_by) else "raw"


def run_report(engine: Engine, query: UsageQuery, source: str | None = None) -> UsageReport:
    """The report; ``source`` forces ``raw`` (tests and the benchmark compare both)."""
    source = source or source_for(query)
    # No grouping: one row, the totals, even over a range with no usage.
    groups: dict[tuple[Any, ...], dict[str, Any]] = {} if query.group_by else {(): dict.fromkeys(FIGURES, 0)}
    with engine.connect() as connection:
        for rows in _results(connection, query, source):
            _merge(groups, rows, len(query.group_by))
    rows_out = [_row(query.group_by, key, groups[key]) for key in sorted(groups, key=_sort_key)]
    totals = {name: sum(group[name] for group in groups.values()) for name in FIGURES}
    return UsageReport.model_validate(
        {
            "from": query.start,
            "to": query.end,
            "group_by": list(query.group_by),
            "rows": rows_out,
            "totals": UsageFigures(**_rounded(totals)),
            "source": source,
        }
    )


def _results(connection: Connection, query: UsageQuery, source: str) -> Iterable[Any]:
    dialect = connection.dialect.name
    selects = [rollup_select] if source == "rollup" else [calls_select, ended_select]
    for build in selects:
        statement = build(query.tenant_id, query.start, query.end, query.group_by, dialect)
        yield connection.execute(statement).mappings()


def _merge(groups: dict[tuple[Any, ...], dict[str, Any]], rows: Any, width: int) -> None:
    for row in rows:
        key = tuple(row[f"g{index}"] for index in range(width))
        group = groups.get(key)
        if group is None:
            if len(groups) >= MAX_GROUPS:
                raise TooManyUsageGroups(
                    f"This grouping makes more than {MAX_GROUPS} rows; group by less or ask for a "
                    "shorter range.",
                    max_rows=MAX_GROUPS,
                )
            group = groups[key] = dict.fromkeys(FIGURES, 0)
        for name in FIGURES:
            if name in row:
                group[name] += row[name] or 0


def _row(group_by: tuple[str, ...], key: tuple[Any, ...], figures: dict[str, Any]) -> dict[str, Any]:
    values = {name: _shown(name, value) for name, value in zip(group_by, key, strict=True)}
    return {**values, **_rounded(figures)}


def _shown(dimension: str, value: Any) -> Any:
    if isinstance(value, datetime):
        at = value.astimezone(UTC)
        return at.date().isoformat() if dimension == "day" else at.strftime("%Y-%m-%dT%H:00:00Z")
    if value == "" and dimension in _NONE_WHEN_EMPTY:
        return None
    return value if value is None or isinstance(value, str) else str(value)


def _sort_key(key: tuple[Any, ...]) -> tuple[Any, ...]:
    # None first, then by text: a key may mix values a plain sort cannot compare.
    return tuple((value is not None, str(value) if value is not None else "") for value in key)


def _rounded(figures: dict[str, Any]) -> dict[str, Any]:
    rounded: dict[str, Any] = {name: int(figures[name]) for name in FIGURES}
    rounded["cost_usd"] = round(float(figures["cost_usd"]), 8)
    rounded["cache_savings_usd"] = round(float(figures["cache_savings_usd"]), 8)
    return rounded
