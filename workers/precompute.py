"""Precompute: run the known queries that are due and inside their off-peak window.

Each run is an ordinary job, inserted and published as the API does: priority class
``precompute`` (the last lanes of the tier's queues, and the rate limiter leaves it only
spare capacity), cache mode ``exact`` with the known query's TTL and the same key a live
request computes, so the worker's answer (stored by the ResultCaching middleware) serves the
next live job from the API's fast path. ``metadata.known_query`` names the known query.

A due query outside its window keeps its ``next_run_at`` and waits for the window. A query
whose previous run has not ended yet is not run again (no pile-up when spare capacity is
scarce). The run and the new ``next_run_at`` are committed together, conditional on the
``next_run_at`` read, so two scans at once run a query once. A crash between commit and
publish leaves an unpublished row, which the reconciler publishes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import Table, and_, or_, true, update
from sqlmodel import Session, col, select

from schemas.jobs import FINAL_STATUSES
from schemas.tables import Job, KnownQuery, utcnow
from workers import store
from workers.cache.exact import request_key
from workers.runtime import Runtime
from workers.schedule import in_window, next_refresh

log = structlog.get_logger("switchyard.precompute")

KNOWN_QUERIES: Table = KnownQuery.__table__  # type: ignore[attr-defined]
PAGE = 500
MAX_RUNS = 1000  # per scan; the rest run at the next one


@dataclass
class PrecomputeReport:
    """What one scan did."""

    due: int = 0
    ran: int = 0
    outside_window: int = 0
    busy: int = 0  # the previous run's job has not ended yet
    unknown_tier: int = 0  # the tier left the config; rescheduled, not run


def run_due(rt: Runtime, now: datetime | None = None, max_runs: int = MAX_RUNS) -> PrecomputeReport:
    """One scan at ``now`` (default: the current time): run every enabled known query whose
    ``next_run_at`` has come and whose window is open."""
    now = now or utcnow()
    report = PrecomputeReport()
    published: list[str] = []
    after: tuple[datetime, str] | None = None
    try:
        while report.ran < max_runs:
            page = _due_page(rt, now, after)
            pending = _unfinished(rt, [row.last_job_id for row in page if row.last_job_id])
            for row in page:
                report.due += 1
                if not in_window(now, row.window_start, row.window_end, row.timezone):
                    report.outside_window += 1
                elif row.last_job_id in pending:
                    report.busy += 1
                elif row.tier not in rt.settings.tiers:
                    report.unknown_tier += 1
                    _reschedule(rt, row, now, None)
                    log.warning("known_query_unknown_tier", known_query=row.id, tier=row.tier)
                elif report.ran < max_runs:
                    job_id = _run(rt, row, now)
                    if job_id is not None:
                        published.append(job_id)
                        report.ran += 1
            if len(page) < PAGE:
                break
            after = (page[-1].next_run_at, page[-1].id)
    finally:
        if published:  # what was published stays marked even if a later run fails
            store.mark_published(rt.engine, published)
    return report


def _due_page(rt: Runtime, now: datetime, after: tuple[datetime, str] | None) -> list[KnownQuery]:
    query = select(KnownQuery).where(col(KnownQuery.enabled) == true(), col(KnownQuery.next_run_at) <= now)
    if after is not None:
        at, last_id = after
        query = query.where(
            or_(
                col(KnownQuery.next_run_at) > at,
                and_(col(KnownQuery.next_run_at) == at, col(KnownQuery.id) > last_id),
            )
        )
    query = query.order_by(col(KnownQuery.next_run_at), col(KnownQuery.id)).limit(PAGE)
    with Session(rt.engine, expire_on_commit=False) as session:
        return list(session.exec(query))


def _unfinished(rt: Runtime, job_ids: list[str]) -> set[str]:
    if not job_ids:
        return set()
    with Session(rt.engine) as session:
        rows = session.exec(
            select(Job.id).where(col(Job.id).in_(job_ids), col(Job.status).not_in(list(FINAL_STATUSES)))
        ).all()
    return set(rows)


def _run(rt: Runtime, row: KnownQuery, now: datetime) -> str | None:
    """Insert the run's job and reschedule the query in one transaction, then publish the job.
    None when another scan ran the query first."""
    key = request_key(row.tenant_id, row.tier, row.request)
    cache = {"mode": "exact", "ttl_s": row.ttl_s, "key": key, "hit": None}
    with Session(rt.engine, expire_on_commit=False) as session:
        job = store.insert_job(
            session,
            tenant_id=row.tenant_id,
            tier=row.tier,
            priority="precompute",
            cache_mode="exact",
            cache=cache,
            request=row.request,
            job_metadata={"known_query": row.id},
            callback_url=None,
        )
        if not _reschedule(rt, row, now, job.id, session):
            session.rollback()
            return None
        session.commit()
    rt.dispatcher.publish(job.id, job.tier, "precompute", job.tenant_id)
    return job.id


def _reschedule(
    rt: Runtime, row: KnownQuery, now: datetime, job_id: str | None, session: Session | None = None
) -> bool:
    """Set the next refresh if the query is still enabled and its ``next_run_at`` is what this
    scan read (no other scan ran it, no update made it due anew); whether it was."""
    values: dict[str, object] = {
        "next_run_at": next_refresh(
            now,
            every_s=row.every_s,
            cron=row.cron,
            ttl_s=row.ttl_s,
            timezone=row.timezone,
            refresh_margin=rt.settings.precompute.refresh_margin,
        )
    }
    if job_id is not None:
        values.update(last_run_at=now, last_job_id=job_id)
    statement = (
        update(KNOWN_QUERIES)
        .where(
            KNOWN_QUERIES.c.id == row.id,
            KNOWN_QUERIES.c.next_run_at == row.next_run_at,
            KNOWN_QUERIES.c.enabled == true(),
        )
        .values(**values)
    )
    if session is not None:
        return session.execute(statement).rowcount == 1  # type: ignore[attr-defined]
    with rt.engine.begin() as connection:
        return connection.execute(statement).rowcount == 1
