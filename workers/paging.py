"""Keyset pagination, newest first, shared by every list endpoint.

Rows are ordered by ``created_at`` then ``id``, both descending. A page asks for one row more
than it shows, to tell whether there is a next page; the last row shown is the next cursor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

from sqlalchemy import and_, or_
from sqlmodel import col


class HasId(Protocol):
    id: str


Row = TypeVar("Row", bound=HasId)


def newest_first(query: Any, model: Any, cursor: Any | None, limit: int) -> Any:
    """``query`` limited to rows older than ``cursor`` (a row of ``model``), newest first,
    with one row more than ``limit``."""
    created_at, row_id = col(model.created_at), col(model.id)
    if cursor is not None:
        query = query.where(
            or_(created_at < cursor.created_at, and_(created_at == cursor.created_at, row_id < cursor.id))
        )
    return query.order_by(created_at.desc(), row_id.desc()).limit(limit + 1)


def split_page(rows: Sequence[Row], limit: int) -> tuple[list[Row], bool, str | None]:
    """The rows to show, whether more follow, and the cursor of the next page."""
    page = list(rows[:limit])
    has_more = len(rows) > limit
    return page, has_more, (page[-1].id if has_more else None)
