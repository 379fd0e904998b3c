"""Keyset pagination, newest first, shared by every list endpoint.

Rows are ordered by ``created_at`` then ``id``, both descending. A page asks for one row more
than it shows, to tell whether there is a next page; the last row shown is the next cursor.
A cursor that is not one of the caller's rows is a 400 ``invalid_cursor``, never a 404: the
list exists, only the cursor is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

from sqlalchemy import and_, or_
from sqlmodel import Session, col

from schemas.errors import InvalidCursor
from workers.tenant_rows import TenantOwned, owned

# Every id is `<prefix>_<token>`; the check also keeps NUL and other bytes PostgreSQL refuses
# out of the query.
CURSOR_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")


class HasId(Protocol):
    id: str


Row = TypeVar("Row", bound=HasId)
Owned = TypeVar("Owned", bound=TenantOwned)


def cursor_row(
    session: Session, model: type[Owned], tenant_id: str, cursor: str | None, param: str = "cursor"
) -> Owned | None:
    """The tenant's row a page continues after (None for the first page), or :class:`InvalidCursor`;
    ``param`` is the query parameter that carried the cursor."""
    if cursor is None:
        return None
    row = owned(session.get(model, cursor), tenant_id) if CURSOR_PATTERN.fullmatch(cursor) else None
    if row is None:
        raise InvalidCursor(
            f"{param} {cursor[:80]!r} is not a row of one of your pages; start again without it, "
            "or pass the value the previous page gave.",
            param=param,
        )
    return row


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
