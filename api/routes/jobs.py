"""Jobs: submit, read (with long-poll), list, cancel, and feedback on a semantic cache hit."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from api import sse, submission_span
from api.deps import Cursor, Reader, ServicesDep, SessionDep, Submitter
from api.keys import Principal
from api.services import Services
from api.submission import after_cache_hit, submit_job
from api.token_relay import relay_job
from schemas.cache import CacheFeedback, CacheFeedbackOut
from schemas.jobs import FINAL_STATUSES, JobCreate, JobList, JobPublic
from schemas.tables import Job
from workers import store
from workers.cache.feedback import report_wrong_hit
from workers.ids import new_id
from workers.paging import cursor_row, split_page

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

# Ids are `job_<hex>`; the pattern also keeps NUL and other bytes PostgreSQL refuses out of queries.
JOB_ID_PATTERN = r"^[A-Za-z0-9_-]+$"
JobId = Annotated[str, Path(max_length=64, pattern=JOB_ID_PATTERN, description="The job's id, `job_...`.")]
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid input; `error.code` says which limit."},
    401: {"description": "Missing or unknown API key."},
    404: {"description": "No such job for this tenant."},
    422: {"description": "Malformed body, or an Idempotency-Key reused with another body."},
}
FALLBACK_POLL_S = 1.0


@router.post(
    "",
    status_code=202,
    response_model=JobPublic,
    responses={
        **ERRORS,
        200: {
            "model": JobPublic,
            "description": "A finished job: answered from the exact cache, or the replay of an "
            "`Idempotency-Key` whose job has ended.",
        },
    },
    summary="Submit a job",
)
async def create_job(
    body: JobCreate,
    services: ServicesDep,
    principal: Submitter,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    # W3C trace context: the job's trace continues the caller's; a malformed one is ignored.
    traceparent: Annotated[str | None, Header(description="W3C trace context of the caller.")] = None,
    tracestate: Annotated[str | None, Header(description="W3C trace state, kept with it.")] = None,
) -> Response:
    """Queue an LLM call on a tier; answers 202 with the queued job, or 200 with a finished job
    when the exact cache already holds the answer (``cache.hit``: ``exact``) or when an
    ``Idempotency-Key`` replays a job that has ended."""
    # The waiter learns the id before the job is published, so the job's end cannot slip past
    # it, and a long-poll that follows needs no read (api/job_waiter.py).
    job_id = new_id("job")
    services.waiter.expect(job_id, principal.tenant_id)
    try:
        submit = submission_span.traced(submit_job, traceparent, tracestate)  # submit_job while off
        accepted = await services.job_lane.run(submit, services, principal, body, idempotency_key, job_id)
    except BaseException:
        services.waiter.forget(job_id)
        raise
    if accepted.job.id != job_id or accepted.cached:
        services.waiter.forget(job_id)
    headers = {"Idempotent-Replayed": "true"} if accepted.replayed else None
    # 200 for a finished job: one the exact cache answered, or a replay whose job has ended since
    # (what the first request would answer now); 202 while the job is still to run.
    response = job_response(accepted.job, status_code=_submit_status(accepted.job), headers=headers)
    if accepted.cached:  # counted and announced once the answer has left
        response.background = BackgroundTask(after_cache_hit, services, principal, accepted)
    return response


@router.get("", response_model=JobList, responses=ERRORS, summary="List jobs")
def list_jobs(
    session: SessionDep,
    principal: Reader,
    status: Literal["queued", "running", "succeeded", "failed", "canceled"] | None = None,
    tier: Annotated[str | None, Query(max_length=64, pattern=r"^[^\x00]*$")] = None,
    api_key_id: Annotated[
        str | None, Query(max_length=40, pattern=r"^[^\x00]*$", description="Jobs this key submitted.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Cursor = None,
) -> JobList:
    """The caller's jobs, newest first."""
    after = cursor_row(session, Job, principal.tenant_id, cursor)
    rows = store.list_jobs(
        session,
        principal.tenant_id,
        limit=limit,
        status=status,
        tier=tier,
        api_key_id=api_key_id,
        cursor=after,
    )
    page, has_more, next_cursor = split_page(rows, limit)
    return JobList(data=[JobPublic.from_row(job) for job in page], has_more=has_more, next_cursor=next_cursor)


@router.get("/{job_id}", response_model=JobPublic, responses=ERRORS, summary="Get a job")
async def get_job(
    job_id: JobId,
    services: ServicesDep,
    principal: Reader,
    wait: Annotated[
        float,
        Query(
            ge=0,
            description="Long-poll up to this many seconds for a final state; more than the "
            "server's `max_wait_s` (60 by default) waits `max_wait_s`.",
        ),
    ] = 0,
) -> Response:
    """The job; with ``wait``, holds the request until the job ends or the time is up."""
    if wait:
        job = await _wait_for_final(services, principal, job_id, min(wait, services.settings.max_wait_s))
    else:
        job = await services.job_lane.run(_read, services, principal, job_id)
    return job_response(job)


@router.get(
    "/{job_id}/stream",
    response_class=StreamingResponse,
    responses={**ERRORS, 200: {"content": {"text/event-stream": {}}, "description": "Deltas, then the job."}},
    summary="Stream a job's answer as it is generated",
)
async def stream_job(job_id: JobId, services: ServicesDep, principal: Reader) -> StreamingResponse:
    """Server-Sent Events: ``delta`` events with the answer's text as the model generates it
    (jobs submitted with ``request.stream: true``), ``restart`` when a retry starts the text
    over, and a last ``job`` event with the final job. A finished job answers at once."""
    woken = services.waiter.register(job_id)  # before the read, so the end is not missed
    try:
        job = await services.job_lane.run(_read, services, principal, job_id)
    except BaseException:
        services.waiter.unregister(job_id, woken)
        raise
    return sse.sse_response(relay_job(services, principal.tenant_id, job, woken))


@router.post(
    "/{job_id}/cancel",
    response_model=JobPublic,
    responses={**ERRORS, 409: {"description": "The job is past `queued`."}},
    summary="Cancel a queued job",
)
def cancel_job(job_id: JobId, services: ServicesDep, principal: Submitter) -> Response:
    """Cancel a job that has not started; running and finished jobs answer 409."""
    job = store.cancel_job(services.engine, principal.tenant_id, job_id)
    services.outcomes.announce_job(job)
    return job_response(job)


@router.post(
    "/{job_id}/feedback",
    response_model=CacheFeedbackOut,
    responses={**ERRORS, 409: {"description": "`not_a_semantic_hit`: no semantic hit answered the job."}},
    summary="Report a semantic cache hit as wrong",
)
def cache_feedback(
    job_id: JobId, body: CacheFeedback, services: ServicesDep, principal: Submitter
) -> dict[str, object]:
    """``{"cache": "wrong"}``: the cached answer was for another question. The entry that
    answered is evicted, the pair is never matched again, and it counts as a disagreement in
    the namespace's estimated false-hit rate (docs/caching.md)."""
    job = _read(services, principal, job_id)
    return report_wrong_hit(services.results, job, services.settings.cache.verification_ttl_s)


def _submit_status(job: Job) -> int:
    return 200 if job.status in FINAL_STATUSES else 202


def job_response(
    job: Job | dict[str, Any] | bytes, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """The job as JSON, serialised once (a returned model would be validated again).

    A dict is a public job the worker already serialised, bytes the same already encoded by the
    job waiter for all its waiters (see ``_wait_for_final``).
    """
    if isinstance(job, bytes):
        return Response(job, status_code=status_code, headers=headers, media_type="application/json")
    body = json.dumps(job) if isinstance(job, dict) else JobPublic.from_row(job).model_dump_json()
    return Response(body, status_code=status_code, headers=headers, media_type="application/json")


def _read(services: Services, principal: Principal, job_id: str) -> Job:
    return store.read_job(services.engine, principal.tenant_id, job_id)


async def _wait_for_final(
    services: Services, principal: Principal, job_id: str, wait_s: float
) -> Job | bytes:
    """The job once final (or at the deadline); the worker's event may carry it ready-made."""
    # Register before reading, so an event between the read and the wait is not missed.
    deadline = time.monotonic() + wait_s
    waiter = services.waiter
    recent = waiter.recent(job_id, principal.tenant_id)  # accepted here lately: no read needed
    while True:
        future = waiter.register(job_id)
        try:
            if recent is not None and recent.final_body is not None:
                return recent.final_body
            if recent is None:
                job = await services.job_lane.run(_read, services, principal, job_id)
                if job.status in FINAL_STATUSES or deadline <= time.monotonic():
                    return job
            recent = None  # after a wait that timed out, read
            remaining = deadline - time.monotonic()
            timeout = remaining if waiter.live else min(remaining, FALLBACK_POLL_S)
            # asyncio.wait adds one callback to the future; wait_for(shield(...)) chains three,
            # and each counts when hundreds of waiters wake at once.
            done, _ = await asyncio.wait((future,), timeout=timeout)
            if done:
                event = future.result()
                if "job_body" in event and event.get("tenant_id") == principal.tenant_id:
                    return bytes(event["job_body"])
        finally:
            waiter.unregister(job_id, future)
