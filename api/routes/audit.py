"""The audit log, read-only: a tenant's admin sees its tenant's entries, the platform admin all.

Entries are written by the admin surfaces themselves (workers/audit.py), in the transaction
of each change; the table refuses UPDATE and DELETE, so this route is the only way in.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlmodel import Session, col, select

from api.deps import AdminOrPlatform, Cursor, SessionDep
from schemas.admin import AuditEntryPublic, AuditList
from schemas.errors import InvalidCursor
from schemas.spend_tables import AuditEntry

router = APIRouter(prefix="/v1/audit", tags=["admin"])

Text = Annotated[str | None, Query(max_length=128, pattern=r"^[A-Za-z0-9_.*:-]+$")]
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "`invalid_cursor`."},
    401: {"description": "Missing, unknown, revoked or expired API key."},
    403: {"description": "The key has neither the `admin` nor the `platform` scope."},
    422: {"description": "Malformed query (a time that is not ISO 8601...)."},
}


@router.get("", response_model=AuditList, responses=ERRORS, summary="Read the audit log")
def list_entries(
    session: SessionDep,
    principal: AdminOrPlatform,
    action: Text = None,
    actor_key_id: Text = None,
    target_type: Text = None,
    tenant_id: Text = None,
    since: Annotated[datetime | None, Query(alias="from", description="At or after (ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(alias="to", description="Before (ISO 8601).")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Cursor = None,
) -> AuditList:
    """Newest first. `action` matches exactly, or by prefix when it ends in `*` (`key.*`).
    A tenant's admin always reads its own tenant's entries; `tenant_id` narrows the platform
    admin's view to one tenant."""
    query = select(AuditEntry)
    if not principal.is_platform_admin:
        query = query.where(col(AuditEntry.tenant_id) == principal.tenant_id)
    filters = {"actor_key_id": actor_key_id, "target_type": target_type, "tenant_id": tenant_id}
    for name, value in filters.items():
        if value is not None:
            query = query.where(getattr(AuditEntry, name) == value)
    if action is not None:
        column = col(AuditEntry.action)
        query = query.where(column.startswith(action[:-1]) if action.endswith("*") else column == action)
    if since is not None:
        query = query.where(col(AuditEntry.at) >= _utc(since))
    if until is not None:
        query = query.where(col(AuditEntry.at) < _utc(until))
    rows = _page(session, query, cursor, limit)
    has_more = len(rows) > limit
    page = rows[:limit]
    return AuditList(
        data=[AuditEntryPublic.from_row(row) for row in page],
        has_more=has_more,
        next_cursor=str(page[-1].id) if has_more else None,
    )


def _page(session: Session, query: Any, cursor: str | None, limit: int) -> list[AuditEntry]:
    # Ids grow with time: the id is the cursor, and a cursor only narrows what the caller sees.
    if cursor is not None:
        if not cursor.isdigit() or len(cursor) > 18:
            raise InvalidCursor(f"cursor {cursor[:80]!r} is not one a page gave.", param="cursor")
        query = query.where(col(AuditEntry.id) < int(cursor))
    return list(session.exec(query.order_by(col(AuditEntry.id).desc()).limit(limit + 1)).all())


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
