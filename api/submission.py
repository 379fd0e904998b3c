"""Accepting a job: validate, deduplicate by Idempotency-Key, insert, publish."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from api import idempotency
from api.job_limits import check_job
from api.keys import Principal
from api.services import Services
from schemas.jobs import JobCreate
from schemas.tables import Job
from workers import store
from workers.db import session_scope


@dataclass(frozen=True)
class Accepted:
    """The job that answers the request, and whether it was an idempotent replay."""

    job: Job
    replayed: bool


def submit_job(services: Services, principal: Principal, body: JobCreate, key_header: str | None) -> Accepted:
    """Accept the job durably: the row is committed before its id is published."""
    check_job(body, services.settings)
    key = idempotency.parse_key(key_header)
    request_hash = idempotency.fingerprint(body.model_dump(mode="json")) if key else ""
    try:
        with session_scope(services.engine) as session:
            if key:
                replay = idempotency.find_replay(session, principal.tenant_id, key, request_hash)
                if replay is not None:
                    return Accepted(store.get_job(session, principal.tenant_id, replay), True)
            # After the replay check: a retried submission of an accepted job is never refused.
            services.admission.admit(principal, body.tier, body.priority)
            job = _insert(session, principal, body)
            if key:  # the job row is already inserted, so the record's foreign key holds
                idempotency.remember(
                    session,
                    principal.tenant_id,
                    key,
                    request_hash,
                    job.id,
                    services.settings.idempotency_ttl_s,
                )
    except IntegrityError:
        if not key:
            raise
        # A concurrent request with the same key won the insert; answer with its job.
        return _replay_after_race(services, principal, key, request_hash)
    _publish(services, job)
    return Accepted(job, False)


def _insert(session: Session, principal: Principal, body: JobCreate) -> Job:
    return store.insert_job(
        session,
        tenant_id=principal.tenant_id,
        tier=body.tier,
        priority=body.priority,
        cache_mode=body.cache,
        request=body.request.model_dump(mode="json", exclude_none=True),
        job_metadata=body.metadata,
        callback_url=body.callback_url,
    )


def _publish(services: Services, job: Job) -> None:
    if "skip_publish_after_commit" in services.settings.inject_faults:
        return  # test-only: behave as if the process died between commit and publish
    services.dispatcher.publish(job.id, job.tier, job.priority, job.tenant_id)
    services.publish_marks.add(job.id)


def _replay_after_race(services: Services, principal: Principal, key: str, request_hash: str) -> Accepted:
    with session_scope(services.engine) as session:
        replay = idempotency.find_replay(session, principal.tenant_id, key, request_hash)
        if replay is None:
            raise RuntimeError("idempotency record vanished during a race")
        return Accepted(store.get_job(session, principal.tenant_id, replay), True)
