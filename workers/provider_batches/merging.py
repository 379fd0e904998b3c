"""Polling and merging: a provider batch that ended is read back into its jobs' rows.

Each pass retrieves every submitted batch. When one ends (completed, failed, expired or
cancelled) the row moves submitted -> merging, the output and error files are read, and
each member job is settled by its line: an answer succeeds at the batch price, a permanent
error fails with its typed code, a retryable error or a line the provider never ran (failed
or expired batch) sends the job back to the live lane. A merge a crash interrupted is taken
up again after ``resend_after_s``; jobs already settled are no longer members.
"""

from __future__ import annotations

from datetime import timedelta

import structlog

from schemas.errors import ProviderBadRequest, ProviderError
from schemas.tables import Job, ProviderBatch, utcnow
from workers.provider_batches import batch_store
from workers.provider_batches.client import BatchClients, RemoteBatch
from workers.provider_batches.lines import LineResult, read_results
from workers.provider_batches.settling import ProviderBatchEnded, fail, fall_back, succeed
from workers.services import JobServices

log = structlog.get_logger("switchyard.provider_batches")


def poll_submitted(rt: JobServices, clients: BatchClients) -> int:
    """Check every submitted batch, merge those that ended, resume stale merges; merges done."""
    merged = 0
    for batch in batch_store.in_status(rt.engine, "submitted"):
        remote = _retrieve(clients, batch)
        if remote is None:
            continue
        if not remote.final:
            if remote.status != batch.remote_status:
                batch_store.take(rt.engine, batch.id, "submitted", "submitted", remote_status=remote.status)
            continue
        taken = batch_store.take(rt.engine, batch.id, "submitted", "merging", remote_status=remote.status)
        merged += merge(rt, clients, taken, remote) if taken is not None else 0
    return merged + _resume_merges(rt, clients)


def _resume_merges(rt: JobServices, clients: BatchClients) -> int:
    resend_after_s = rt.settings.provider_batches.resend_after_s
    stale_before = utcnow() - timedelta(seconds=resend_after_s)
    merged = 0
    for batch_id in batch_store.stale(rt.engine, "merging", resend_after_s):
        taken = batch_store.take(rt.engine, batch_id, "merging", "merging", stale_before=stale_before)
        remote = _retrieve(clients, taken) if taken is not None else None
        merged += merge(rt, clients, taken, remote) if taken is not None and remote is not None else 0
    return merged


def _retrieve(clients: BatchClients, batch: ProviderBatch) -> RemoteBatch | None:
    assert batch.remote_id is not None
    try:
        return clients.get(batch.provider).retrieve(batch.remote_id)
    except ProviderBadRequest as error:
        if error.details.get("provider_status") == 404:
            return RemoteBatch(batch.remote_id, "failed")  # the provider lost it: run the jobs live
        log.warning("provider_batch_poll_failed", batch=batch.id, error=error.message)
        return None
    except (ProviderError, KeyError) as error:
        log.warning("provider_batch_poll_failed", batch=batch.id, error=str(error))
        return None


def merge(rt: JobServices, clients: BatchClients, batch: ProviderBatch, remote: RemoteBatch) -> int:
    """Settle every member job from the ended batch's files; 1 when the batch is done."""
    results: dict[str, LineResult] = {}
    try:
        for file_id in (remote.output_file_id, remote.error_file_id):
            if file_id:
                results.update(read_results(clients.get(batch.provider).content(file_id)))
    except ProviderError as error:  # stays `merging`: taken up again after resend_after_s
        log.warning("provider_batch_download_failed", batch=batch.id, code=error.code)
        return 0
    jobs = batch_store.members(rt.engine, batch.id)
    for job in jobs:
        settle_line(rt, job, batch, results.get(job.id), remote.status)
    batch_store.take(rt.engine, batch.id, "merging", "done", finished_at=utcnow())
    log.info("provider_batch_merged", batch=batch.id, remote=remote.id, status=remote.status, jobs=len(jobs))
    return 1


def settle_line(
    rt: JobServices, job: Job, batch: ProviderBatch, result: LineResult | None, status: str
) -> None:
    """Settle one job from its line, or send it back to the live lane when it has none."""
    if result is None:
        code = "provider_batch_incomplete" if status == "completed" else f"provider_batch_{status}"
        message = f"The provider batch ended {status} without this job's line."
        fall_back(rt, job, batch, ProviderBatchEnded(code, message))
    elif result.completion is not None:
        succeed(rt, job, batch, result.completion)
    elif result.error is not None and result.error.retryable:
        fall_back(rt, job, batch, result.error)
    elif result.error is not None:
        fail(rt, job, batch, result.error)
