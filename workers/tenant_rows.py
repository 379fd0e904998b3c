"""A tenant's rows by id: one lookup for every "the tenant's X, or 404".

Another tenant's row answers exactly as a missing one does, so ids never tell a caller what
other tenants hold.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from sqlmodel import Session

from schemas.errors import NotFound


class TenantOwned(Protocol):
    """A row that belongs to one tenant."""

    @property
    def tenant_id(self) -> str: ...


Row = TypeVar("Row", bound=TenantOwned)


def owned(row: Row | None, tenant_id: str) -> Row | None:
    """``row`` if the tenant owns it, else None."""
    return row if row is not None and row.tenant_id == tenant_id else None


def require_owned(row: Row | None, tenant_id: str, what: str, row_id: str, param: str) -> Row:
    """``row`` if the tenant owns it, else :class:`NotFound` naming ``what`` and ``param``."""
    found = owned(row, tenant_id)
    if found is None:
        raise NotFound(f"No {what} {row_id!r}.", param=param)
    return found


def get_owned(session: Session, model: type[Row], tenant_id: str, row_id: str, what: str, param: str) -> Row:
    """The tenant's row of ``model`` with id ``row_id``, or :class:`NotFound`."""
    return require_owned(session.get(model, row_id), tenant_id, what, row_id, param)
