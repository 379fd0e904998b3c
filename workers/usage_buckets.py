"""UTC hour and day buckets of a timestamp column, in SQL, on PostgreSQL and SQLite.

Buckets are UTC on purpose: they are what the rollups are keyed by. A day in a tenant's time
zone would be a later extension (docs/spend.md).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, literal_column, type_coerce

from schemas.columns import UTCDateTime

# SQLite keeps a timestamp as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC, see schemas.columns).
_UNITS = {"hour": "hour", "day": "day"}  # the only text that reaches the SQL
_SQLITE_FORMATS = {"hour": "%Y-%m-%d %H:00:00.000000", "day": "%Y-%m-%d 00:00:00.000000"}


def truncate(column: Any, unit: str, dialect: str) -> Any:
    """``column`` cut down to the start of its UTC ``unit`` ("hour" or "day"), as a timestamp."""
    # Literals, not parameters: the same expression in SELECT and GROUP BY must be the same text.
    if dialect == "postgresql":
        expression = func.date_trunc(literal_column(f"'{_UNITS[unit]}'"), column, literal_column("'UTC'"))
    else:
        expression = func.strftime(literal_column(f"'{_SQLITE_FORMATS[unit]}'"), column)
    return type_coerce(expression, UTCDateTime())
