"""Accepting a job: validate, deduplicate by Idempotency-Key, insert, publish."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from api import idempotency
from api.budget_gate import refuse_if_exhausted
from api.job_limits import check_job
from api.keys import Principal, check_tiers
from api.services import Services
from schemas.jobs import JobCreate
from schemas.tables import Job
from workers import store
from workers.broker import PUBLISH_FAILURES
from workers.cache import policy as cache_policy
from workers.cache.exact import request_key
from workers.cache.results import CachedResult
from workers.db import session_scope
from workers.metrics.recording import submission
from workers.routing_rules import route_request

log = structlog.get_logger("switchyard.api")


@dataclass(frozen=True)
class Accepted:
    """The job that answers the request: an idempotent replay, a cache hit, or newly queued."""

    job: Job
    replayed: bool = False
    hit: CachedResult | None = None  # the exact-cache answer it was given

    @property
    def cached(self) -> bool:
        return self.hit is not None


def submit_job(
    services: Services,
    principal: Principal,
    body: JobCreate,
    key_header: str | None,
    job_id: str | None = None,
) -> Accepted:
    """Accept the job durably: the row is committed before its id is published. A new job
    gets ``job_id`` when given; a replay answers with the earlier job, whatever its id.
    Counted as submitted, then accepted or refused (switchyard_jobs_*_total)."""
    with submission(services.settings, body.tier, body.priority):
        return _submit(services, principal, body, key_header, job_id)


def _submit(
    services: Services, principal: Principal, body: JobCreate, key_header: str | None, job_id: str | None
) -> Accepted:
    check_tiers(principal, {body.tier})  # the tier the client named, before any routing
    routed, routing = route_request(services.settings, body)  # the tier it runs on (docs/spend.md)
    check_job(routed, services.settings)
    key = idempotency.parse_key(key_header)
    request_hash = idempotency.fingerprint(body.model_dump(mode="json")) if key else ""
    body = routed  # fingerprinted as asked, so a retry matches even if the rules change
    try:
        with session_scope(services.engine) as session:
            if key:
                replay = idempotency.find_replay(session, principal.tenant_id, key, request_hash)
                if replay is not None:
                    return Accepted(store.get_job(session, principal.tenant_id, replay), replayed=True)
            # After the replay check: a retried submission of an accepted job is never refused.
            refuse_if_exhausted(services, principal, body.tier)  # 402 budget_exceeded
            policy, cache_key, hit = _rate_check_and_cache(services, principal, body)
            if hit is None:
                services.admission.check_tier(body.tier, body.priority)
            job = _insert(session, principal, body, policy, cache_key, hit, job_id, routing)
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
    if hit is not None:  # answered from the cache: nothing to queue (see after_cache_hit)
        return Accepted(job, hit=hit)
    _publish(services, job)
    return Accepted(job)


def after_cache_hit(services: Services, principal: Principal, accepted: Accepted) -> None:
    """What a cache hit leaves for after its answer: count the hit, and announce the job's end
    (webhooks for a ``callback_url``, the event stream). If the process dies before this runs,
    the reconciler's webhook repair sends the webhooks (docs/webhooks.md)."""
    assert accepted.hit is not None
    services.results.count_hit(principal.tenant_id, accepted.job.tier, accepted.hit)
    services.outcomes.announce_job(accepted.job)


def _rate_check_and_cache(
    services: Services, principal: Principal, body: JobCreate
) -> tuple[cache_policy.CachePolicy, str | None, CachedResult | None]:
    """Check the tenant's submission rate (429 over it) and look the request up in the exact
    cache, in one round trip; the job's cache policy, its exact key (None when off) and the
    hit, if any."""
    policy = cache_policy.resolve(
        body.cache, body.cache_ttl, body.request, services.settings.tiers[body.tier]
    )
    tenant_id = principal.tenant_id
    if not policy.enabled:
        services.admission.check_tenant_rate(principal)
        return policy, None, None
    request = body.request.model_dump(mode="json", exclude_none=True)
    key = request_key(tenant_id, body.tier, request)
    [raw] = services.admission.check_tenant_rate(
        principal, along=partial(services.results.queue_lookup, tenant_id=tenant_id, tier=body.tier, key=key)
    )
    return policy, key, services.results.lookup(tenant_id, body.tier, key, request, raw)


def _insert(
    session: Session,
    principal: Principal,
    body: JobCreate,
    policy: cache_policy.CachePolicy,
    cache_key: str | None,
    hit: CachedResult | None,
    job_id: str | None,
    routing: dict[str, Any] | None,
) -> Job:
    cache = {"mode": policy.mode, "ttl_s": policy.ttl_s, "key": cache_key, "hit": None}
    fields = {
        "tenant_id": principal.tenant_id,
        "tier": body.tier,
        "kind": body.kind,
        "priority": body.priority,
        "completion_window": body.completion_window,
        "cache_mode": policy.mode,
        "cache": cache,
        "request": body.request.model_dump(mode="json", exclude_none=True),
        "job_metadata": body.metadata,
        "callback_url": body.callback_url,
        "api_key_id": principal.key_id,
        "routing": routing,
    }
    if hit is not None:  # a finished job: the cached answer, no cost, where it came from
        fields.update(hit.as_job_fields(cache))
    return store.insert_job(session, job_id, **fields)


def _publish(services: Services, job: Job) -> None:
    if "skip_publish_after_commit" in services.settings.inject_faults:
        return  # test-only: behave as if the process died between commit and publish
    try:
        services.dispatcher.publish(job.id, job.tier, job.priority, job.tenant_id)
    except PUBLISH_FAILURES as exc:
        # The row is committed, so the job is accepted: the reconciler publishes it after
        # orphan_grace_s (docs/redis-loss.md). A 503 here would invite a duplicate submission.
        log.warning("publish_failed_after_commit", job=job.id, error_type=type(exc).__name__)
        return
    services.publish_marks.add(job.id)


def _replay_after_race(services: Services, principal: Principal, key: str, request_hash: str) -> Accepted:
    with session_scope(services.engine) as session:
        replay = idempotency.find_replay(session, principal.tenant_id, key, request_hash)
        if replay is None:
            raise RuntimeError("idempotency record vanished during a race")
        return Accepted(store.get_job(session, principal.tenant_id, replay), True)
