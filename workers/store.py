"""The job store: every state change of a job row, as conditional updates.

A state change succeeds only from the state it expects, so duplicate deliveries, zombie
workers and racing reconcilers cannot overwrite each other.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, insert, or_, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select as select_columns
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col, select

from schemas.errors import JobNotCancelable
from schemas.tables import Job, Usage, utcnow
from workers import usage_rollups
from workers.db import session_scope
from workers.ids import new_id
from workers.paging import newest_first
from workers.tenant_rows import get_owned, require_owned

MARK_CHUNK = 10_000
# The hot paths (insert, claim, finish) run Core statements on the table, without the ORM
# unit of work: they cost a fraction of the ORM's bookkeeping per job.
JOBS: Table = Job.__table__  # type: ignore[attr-defined]
USAGE: Table = Usage.__table__  # type: ignore[attr-defined]
# Attribute name -> column name; they differ only where a name is taken (job_metadata).
COLUMNS = {attribute.key: attribute.columns[0].name for attribute in sa_inspect(Job).column_attrs}
# Only a queued row is claimed. A running row whose lease expired is not taken here: the
# reconciler first records its lost attempt, then queues it again (workers/lease_recovery.py).
_CLAIM = (
    update(JOBS)
    .where(
        JOBS.c.id == bindparam("job_id"),
        JOBS.c.status == "queued",
        or_(JOBS.c.not_before.is_(None), JOBS.c.not_before <= bindparam("now")),
    )
    .values(
        status="running",
        lease_token=bindparam("token"),
        lease_expires_at=bindparam("expires"),
        attempts=JOBS.c.attempts + 1,
        started_at=bindparam("now"),
        updated_at=bindparam("now"),
    )
    .returning(*JOBS.c)
)


# The heartbeat's UPDATE (workers/lease_heartbeat.py). It never shortens a longer lease, such as
# that of a job parked in a provider batch.
_RENEW = (
    update(JOBS)
    .where(
        JOBS.c.id.in_(bindparam("job_ids", expanding=True)),
        JOBS.c.status == "running",
        JOBS.c.lease_expires_at < bindparam("expires"),
    )
    .values(lease_expires_at=bindparam("expires"))
)
_READ = select_columns(JOBS).where(JOBS.c.id == bindparam("job_id"))
_INSERT_JOB = insert(JOBS)
_INSERT_USAGE = insert(USAGE)
# The job columns its hourly usage rollups are keyed and counted by (workers/usage_rollups.py).
ROLLUP_COLUMNS = (
    "tenant_id",
    "tier",
    "priority",
    "api_key_id",
    "model",
    "provider",
    "status",
    "cache",
    "finished_at",
    "updated_at",
)
# finish_job's UPDATE, one prebuilt statement per set of columns it writes: a statement built
# per call costs SQLAlchemy a fresh cache key each time (about a third of the update's CPU).
_FINISH: dict[tuple[frozenset[str], bool], Any] = {}


def _columns(values: dict[str, Any]) -> dict[str, Any]:
    return {COLUMNS[name]: value for name, value in values.items()}


def _job_from_row(row: Any) -> Job:
    # model_construct: the row is ours and already typed; validating it again costs 6x more.
    return Job.model_construct(**{name: row[column] for name, column in COLUMNS.items()})


def insert_job(session: Session, job_id: str | None = None, **fields: Any) -> Job:
    """Insert a new job, ``queued`` unless ``fields`` say otherwise, in the session's
    transaction (the caller commits); ``job_id`` if the caller chose the id."""
    now = utcnow()
    values = {"status": "queued", "attempt_log": [], "created_at": now, "updated_at": now, **fields}
    job = Job.model_construct(id=job_id or new_id("job"), **values)
    row = _columns(job.model_dump())
    session.execute(_INSERT_JOB, row)
    # A job inserted finished (the API's exact-cache fast path) counts in the rollups at once.
    usage_rollups.add(session.connection(), [usage_rollups.ended_figures(row)])
    return job


def get_job(session: Session, tenant_id: str, job_id: str) -> Job:
    """The tenant's job, or NotFound: another tenant's job does not exist for the caller."""
    return get_owned(session, Job, tenant_id, job_id, "job", "job_id")


def read_job(engine: Engine, tenant_id: str, job_id: str) -> Job:
    """The tenant's job, or NotFound, read with one prebuilt Core query (the polling hot path)."""
    with engine.connect() as connection:
        row = connection.execute(_READ, {"job_id": job_id}).mappings().first()
    return require_owned(_job_from_row(row) if row else None, tenant_id, "job", job_id, "job_id")


def load_job(engine: Engine, job_id: str) -> Job | None:
    """A job by id, for workers (no tenant check)."""
    with Session(engine, expire_on_commit=False) as session:
        return session.get(Job, job_id)


def list_jobs(
    session: Session,
    tenant_id: str,
    *,
    limit: int,
    status: str | None = None,
    tier: str | None = None,
    api_key_id: str | None = None,
    cursor: Job | None = None,
) -> list[Job]:
    """The tenant's jobs, newest first, after ``cursor``; one extra to tell ``has_more``."""
    query = select(Job).where(col(Job.tenant_id) == tenant_id)
    if status:
        query = query.where(col(Job.status) == status)
    if tier:
        query = query.where(col(Job.tier) == tier)
    if api_key_id:
        query = query.where(col(Job.api_key_id) == api_key_id)
    return list(session.exec(newest_first(query, Job, cursor, limit)))


def cancel_job(engine: Engine, tenant_id: str, job_id: str) -> Job:
    """Cancel a queued job; a job past ``queued`` cannot be canceled."""
    now = utcnow()
    with session_scope(engine) as session:
        job = get_job(session, tenant_id, job_id)
        changed = _transition(
            session,
            job_id,
            col(Job.status) == "queued",
            status="canceled",
            finished_at=now,
            error_code="canceled",
            error_message="Canceled by the client.",
        )
        if not changed:
            session.refresh(job)
            raise JobNotCancelable(
                f"Job {job_id} is {job.status}; only queued jobs can be canceled.",
                status=job.status,
            )
        session.refresh(job)
        return job


def mark_published(engine: Engine, job_ids: list[str]) -> None:
    """Record that the jobs' messages are on the broker."""
    now = utcnow()
    with engine.begin() as connection:
        # In chunks: a batch's 50,000 ids in one IN list would pass PostgreSQL's 65,535
        # parameters once another batch's marks join them.
        for start in range(0, len(job_ids), MARK_CHUNK):
            chunk = job_ids[start : start + MARK_CHUNK]
            connection.execute(
                update(JOBS).where(JOBS.c.id.in_(chunk), JOBS.c.status == "queued").values(published_at=now)
            )


def claim_job(engine: Engine, job_id: str, lease_s: int) -> Job | None:
    """Take the job for this worker with a lease; None if someone else holds it or it is done."""
    now = utcnow()
    params = {
        "job_id": job_id,
        "now": now,
        "token": new_id("lease"),
        "expires": now + timedelta(seconds=lease_s),
    }
    with engine.begin() as connection:
        row = connection.execute(_CLAIM, params).mappings().first()
    return _job_from_row(row) if row is not None else None


def finish_job(engine: Engine, job: Job, usage: Usage | None = None, **fields: Any) -> Job | None:
    """Move the claimed job to its next state if this worker's lease still holds; the new row."""
    fields = {"lease_token": None, "lease_expires_at": None, "updated_at": utcnow(), **fields}
    values = _columns(fields)
    params = {**{f"new_{name}": value for name, value in values.items()}, "job_id": job.id}
    params["held_token"] = job.lease_token
    with engine.begin() as connection:
        statement = _finish_statement(frozenset(values), held_by_token=job.lease_token is not None)
        changed = connection.execute(statement, params).rowcount == 1
        if changed:
            view = {name: getattr(job, name) for name in ROLLUP_COLUMNS}
            _settle_usage(connection, {**view, **values}, usage)
    return job.model_copy(update=fields) if changed else None


def _settle_usage(connection: Connection, job: dict[str, Any], usage: Usage | None) -> None:
    """Write the call's usage row and add it, and the job's end if it ended, to the rollups."""
    if usage is not None:
        connection.execute(_INSERT_USAGE, usage.model_dump(exclude={"id"}))
    call = usage_rollups.call_figures(usage, job) if usage is not None else None
    usage_rollups.add(connection, [call, usage_rollups.ended_figures(job)])


def _finish_statement(columns: frozenset[str], held_by_token: bool) -> Any:
    """The lease-held UPDATE writing ``columns`` from ``new_<column>`` parameters."""
    statement = _FINISH.get((columns, held_by_token))
    if statement is None:
        token = JOBS.c.lease_token
        statement = _FINISH[(columns, held_by_token)] = (
            update(JOBS)
            .where(
                JOBS.c.id == bindparam("job_id"),
                JOBS.c.status == "running",
                token == bindparam("held_token") if held_by_token else token.is_(None),
            )
            .values({name: bindparam(f"new_{name}") for name in sorted(columns)})
        )
    return statement


def fail_job(engine: Engine, job: Job, code: str, message: str, **fields: Any) -> Job | None:
    """End a claimed job as ``failed`` with a typed error code."""
    return finish_job(
        engine,
        job,
        status="failed",
        error_code=code,
        error_message=message[:2000],
        finished_at=utcnow(),
        **fields,
    )


def hand_back(engine: Engine, job: Job, not_before: datetime, published: bool, **fields: Any) -> Job | None:
    """Return a claimed job to ``queued``, runnable from ``not_before``."""
    return finish_job(
        engine,
        job,
        status="queued",
        not_before=not_before,
        published_at=utcnow() if published else None,
        **fields,
    )


def renew_leases(engine: Engine, job_ids: list[str], lease_s: float) -> int:
    """Extend the leases of the running ``job_ids`` to ``lease_s`` from now, in one UPDATE."""
    with engine.begin() as connection:
        result = connection.execute(
            _RENEW, {"job_ids": job_ids, "expires": utcnow() + timedelta(seconds=lease_s)}
        )
    return int(result.rowcount)


def requeue_expired(
    engine: Engine, job_id: str, held_token: str | None, usage: Usage | None, **fields: Any
) -> bool:
    """Return a job whose worker's lease expired to ``queued``, unpublished, with ``fields``."""
    return _end_expired(
        engine, job_id, held_token, usage, status="queued", not_before=None, published_at=None, **fields
    )


def fail_expired(
    engine: Engine,
    job_id: str,
    held_token: str | None,
    usage: Usage | None,
    code: str,
    message: str,
    **fields: Any,
) -> bool:
    """Fail a job whose worker's lease expired (the dead letter), with ``fields``."""
    values = {"error_code": code, "error_message": message, "finished_at": utcnow(), **fields}
    return _end_expired(engine, job_id, held_token, usage, status="failed", **values)


def _end_expired(
    engine: Engine, job_id: str, held_token: str | None, usage: Usage | None, **fields: Any
) -> bool:
    # Conditional on the expired lease the reconciler saw: a lease renewed meanwhile (a worker
    # that was only slow) or a job that ended keeps its row, and the usage row is not written.
    now = utcnow()
    token = JOBS.c.lease_token
    statement = (
        update(JOBS)
        .where(
            JOBS.c.id == job_id,
            JOBS.c.status == "running",
            JOBS.c.lease_expires_at < now,
            token == held_token if held_token is not None else token.is_(None),
        )
        .values(_columns({"lease_token": None, "lease_expires_at": None, "updated_at": now, **fields}))
        .returning(*(JOBS.c[name] for name in ROLLUP_COLUMNS))
    )
    with engine.begin() as connection:
        row = connection.execute(statement).mappings().first()
        if row is not None:
            _settle_usage(connection, dict(row), usage)
    return row is not None


def record_usage(engine: Engine, usage: Usage) -> None:
    """Write one provider call's usage row, and add it to the rollups."""
    with engine.begin() as connection:
        job = (
            connection.execute(
                select_columns(JOBS.c.priority, JOBS.c.api_key_id).where(JOBS.c.id == usage.job_id)
            )
            .mappings()
            .first()
        )
        connection.execute(_INSERT_USAGE, usage.model_dump(exclude={"id"}))
        usage_rollups.add(connection, [usage_rollups.call_figures(usage, dict(job or {}))])


def _transition(session: Session, job_id: str, condition: Any, **values: Any) -> bool:
    values.setdefault("updated_at", utcnow())
    result = session.execute(update(Job).where(col(Job.id) == job_id, condition).values(**values))
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]
