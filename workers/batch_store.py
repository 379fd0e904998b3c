"""The batch store: batch rows, their jobs in bulk, and the one conditional update that ends a batch.

Jobs of a batch are inserted with executemany in chunks and read back in input order by
keyset over ``batch_line`` (index ``ix_jobs_batch_line``). Whether a batch still has open
jobs is one probe of ``ix_jobs_batch_status``, so ending a job never scans its batch.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, case, exists, func, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col
from sqlmodel import select as sm_select

from schemas.batches import BatchJobCounts
from schemas.tables import Batch, File, FileContent, utcnow
from workers import store, usage_rollups
from workers.metrics.recording import record_bulk_cancel
from workers.paging import newest_first
from workers.tenant_rows import get_owned

BATCHES: Table = Batch.__table__  # type: ignore[attr-defined]
FILES: Table = File.__table__  # type: ignore[attr-defined]
JOBS = store.JOBS
INSERT_CHUNK = 1000
LINE_PAGE = 500
OPEN_STATUSES = ("queued", "running")
CANCEL_MESSAGES = {
    "batch_cancelled": "The batch was cancelled before this line ran.",
    "batch_expired": "The batch's completion window ended before this line ran.",
}
JOB_STATUSES = ("queued", "running", "succeeded", "failed", "canceled")
ACTIVE_BATCH = ("validating", "in_progress", "cancelling")
LINE_COLUMNS = (
    JOBS.c.id,
    JOBS.c.custom_id,
    JOBS.c.batch_line,
    JOBS.c.status,
    JOBS.c.result,
    JOBS.c.error_code,
    JOBS.c.error_message,
)


def new_file_id() -> str:
    """An OpenAI-style file id, ``file-`` and 24 hex characters."""
    return f"file-{secrets.token_hex(12)}"


def insert_batch(connection: Connection, batch: Batch) -> None:
    """Insert a new batch row (the caller's transaction commits it)."""
    values = batch.model_dump()
    # The attribute is batch_metadata; the column is "metadata" (a name SQLModel reserves).
    values["metadata"] = values.pop("batch_metadata")
    connection.execute(insert(BATCHES).values(**values))


def insert_jobs(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert job rows (column name -> value; a column left out is NULL) with executemany,
    ``INSERT_CHUNK`` at a time; rows with the same columns share a statement."""
    by_columns: dict[frozenset[str], list[dict[str, Any]]] = {}
    for row in rows:
        by_columns.setdefault(frozenset(row), []).append(row)
    for group in by_columns.values():
        for start in range(0, len(group), INSERT_CHUNK):
            connection.execute(insert(JOBS), group[start : start + INSERT_CHUNK])
    # Lines the exact cache answered are inserted finished: they count in the rollups now.
    usage_rollups.add(connection, (usage_rollups.ended_figures(row) for row in rows))


def get_batch(session: Session, tenant_id: str, batch_id: str) -> Batch:
    """The tenant's batch, or NotFound: another tenant's batch does not exist for the caller."""
    return get_owned(session, Batch, tenant_id, batch_id, "batch", "batch_id")


def get_file(session: Session, tenant_id: str, file_id: str) -> File:
    """The tenant's file, or NotFound."""
    return get_owned(session, File, tenant_id, file_id, "file", "file_id")


def file_bytes(session: Session, file_id: str) -> bytes:
    """An uploaded file's content."""
    content = session.get(FileContent, file_id)
    return content.data if content is not None else b""


def list_batches(session: Session, tenant_id: str, limit: int, after: Batch | None) -> list[Batch]:
    """The tenant's batches, newest first, after ``after``; one extra to tell ``has_more``."""
    query = sm_select(Batch).where(col(Batch.tenant_id) == tenant_id)
    return list(session.exec(newest_first(query, Batch, after, limit)))


def job_counts(connection: Connection, batch_id: str) -> tuple[dict[str, int], float, datetime | None]:
    """Jobs per status, their cost so far and when the last one finished."""
    rows = connection.execute(
        select(JOBS.c.status, func.count(), func.sum(JOBS.c.cost_usd), func.max(JOBS.c.finished_at))
        .where(JOBS.c.batch_id == batch_id)
        .group_by(JOBS.c.status)
    ).all()
    finished = [row[3] for row in rows if row[3] is not None]
    last = max(finished) if finished else None
    if isinstance(last, str):  # SQLite aggregates return the stored text, not the column type
        last = datetime.fromisoformat(last)
    return {row[0]: int(row[1]) for row in rows}, float(sum(row[2] or 0.0 for row in rows)), last


def counts_of(by_status: dict[str, int], invalid: int) -> BatchJobCounts:
    """The public counts from jobs per status and the skipped invalid lines."""
    return BatchJobCounts(
        invalid=invalid, **{status: by_status.get(status, 0) for status in store_statuses()}
    )


def store_statuses() -> tuple[str, ...]:
    return ("queued", "running", "succeeded", "failed", "canceled")


def close_if_done(connection: Connection, batch_id: str) -> str | None:
    """End the batch if none of its jobs is open: ``completed``, ``cancelled`` after a cancel,
    or ``expired`` once its window passed (``expired_at`` set).

    A conditional update, so of many callers racing at the batch's last job exactly one wins;
    it gets the new status, the others None.
    """
    open_jobs = exists().where(JOBS.c.batch_id == batch_id, JOBS.c.status.in_(OPEN_STATUSES))
    now = utcnow()
    cancelling = BATCHES.c.status == "cancelling"
    expiring = BATCHES.c.expired_at.is_not(None)
    statement = (
        update(BATCHES)
        .where(BATCHES.c.id == batch_id, BATCHES.c.status.in_(ACTIVE_BATCH), ~open_jobs)
        .values(
            status=case((cancelling, "cancelled"), (expiring, "expired"), else_="completed"),
            finalizing_at=now,
            cancelled_at=case((cancelling, now), else_=None),
            completed_at=case((cancelling, None), (expiring, None), else_=now),
        )
        .returning(BATCHES.c.status)
    )
    row = connection.execute(statement).first()
    return str(row[0]) if row is not None else None


def attach_files(connection: Connection, batch: Batch, has_errors: bool) -> dict[str, str | None]:
    """Create the ended batch's output file and, when lines failed, its error file."""
    ids: dict[str, str | None] = {"output_file_id": new_file_id(), "error_file_id": None}
    if has_errors:
        ids["error_file_id"] = new_file_id()
    for field, suffix in (("output_file_id", "output"), ("error_file_id", "errors")):
        if ids[field] is not None:
            connection.execute(
                insert(FILES).values(
                    id=ids[field],
                    tenant_id=batch.tenant_id,
                    purpose="batch_output",
                    filename=f"{batch.id}_{suffix}.jsonl",
                    bytes=0,
                    batch_id=batch.id,
                    created_at=utcnow(),
                )
            )
    connection.execute(update(BATCHES).where(BATCHES.c.id == batch.id).values(**ids))
    return ids


def cancel_queued(connection: Connection, batch_id: str, code: str = "batch_cancelled") -> int:
    """Cancel every queued job of the batch in one statement; running ones finish."""
    now = utcnow()
    message = CANCEL_MESSAGES[code]
    rows = connection.execute(
        update(JOBS)
        .where(JOBS.c.batch_id == batch_id, JOBS.c.status == "queued")
        .values(
            status="canceled",
            error_code=code,
            error_message=message,
            finished_at=now,
            updated_at=now,
        )
        .returning(JOBS.c.tier, JOBS.c.priority, JOBS.c.created_at)
    ).all()
    record_bulk_cancel(((row.tier, row.priority, row.created_at) for row in rows), code)
    return len(rows)


def mark_cancelling(connection: Connection, batch_id: str) -> bool:
    """Move an active batch to ``cancelling``; False if it already ended or is cancelling."""
    result = connection.execute(
        update(BATCHES)
        .where(BATCHES.c.id == batch_id, BATCHES.c.status.in_(("validating", "in_progress")))
        .values(status="cancelling", cancelling_at=utcnow())
    )
    return bool(result.rowcount == 1)


def mark_expiring(connection: Connection, batch_id: str) -> bool:
    """Note that an in-progress batch's window passed; False if it ended or was noted already."""
    now = utcnow()
    result = connection.execute(
        update(BATCHES)
        .where(
            BATCHES.c.id == batch_id,
            BATCHES.c.status == "in_progress",
            BATCHES.c.expired_at.is_(None),
            BATCHES.c.expires_at < now,
        )
        .values(expired_at=now)
    )
    return bool(result.rowcount == 1)


def past_window(engine: Engine, limit: int) -> list[str]:
    """In-progress batches whose completion window has passed, not yet noted."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(BATCHES.c.id)
            .where(
                BATCHES.c.status == "in_progress",
                BATCHES.c.expired_at.is_(None),
                BATCHES.c.expires_at < utcnow(),
            )
            .limit(limit)
        ).all()
    return [row[0] for row in rows]


def line_pages(engine: Engine, batch_id: str, statuses: Sequence[str]) -> Iterator[list[Any]]:
    """The batch's jobs in ``statuses``, in input order, a page at a time (keyset on batch_line)."""
    after = -1
    while True:
        with engine.connect() as connection:
            rows = connection.execute(
                select(*LINE_COLUMNS)
                .where(JOBS.c.batch_id == batch_id, JOBS.c.batch_line > after, JOBS.c.status.in_(statuses))
                .order_by(JOBS.c.batch_line)
                .limit(LINE_PAGE)
            ).all()
        if not rows:
            return
        yield list(rows)
        after = rows[-1].batch_line


def unfinished_batches(engine: Engine, limit: int) -> list[str]:
    """Active batches with no open job left: what a crash between a job's end and its batch's
    accounting leaves behind."""
    open_jobs = exists().where(JOBS.c.batch_id == BATCHES.c.id, JOBS.c.status.in_(OPEN_STATUSES))
    with engine.connect() as connection:
        rows = connection.execute(
            select(BATCHES.c.id).where(BATCHES.c.status.in_(ACTIVE_BATCH), ~open_jobs).limit(limit)
        ).all()
    return [row[0] for row in rows]
