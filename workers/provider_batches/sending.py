"""Sending: full or old open batches go to the provider (upload, then batches.create).

The row moves open -> sending before anything is uploaded, and to submitted with the
provider's batch id after. A send a crash interrupted is taken up again once the row is
``resend_after_s`` old: it first looks for a provider batch tagged with the row's id, so a
batch created just before the crash is adopted, not created twice. The input file id is
recorded as soon as the upload returns, so a resumed send does not upload again.
"""

from __future__ import annotations

from datetime import timedelta

import structlog

from schemas.errors import ProviderError
from schemas.settings import TierConfig
from schemas.tables import Job, ProviderBatch, utcnow
from workers.provider_batches import batch_store
from workers.provider_batches.client import BatchClient, BatchClients
from workers.provider_batches.lines import CHAT_ENDPOINT, encode_line, request_line
from workers.provider_batches.settling import ProviderBatchEnded, fall_back
from workers.services import JobServices

log = structlog.get_logger("switchyard.provider_batches")
NEXT_ATTEMPT = batch_store.BATCHES.c.send_attempts + 1


def send_due(rt: JobServices, clients: BatchClients) -> int:
    """Send every full or old open batch, and resume stale sends; how many were submitted."""
    limits = rt.settings.provider_batches
    # Stale as of the pass's start: a batch this pass sent (and touched) is never resumed by
    # the same pass, however long its send took.
    stale_before = utcnow() - timedelta(seconds=limits.resend_after_s)
    sent = 0
    for batch_id in batch_store.due_to_send(rt.engine, limits, rt.settings.max_body_bytes):
        batch = batch_store.take(rt.engine, batch_id, "open", "sending", send_attempts=NEXT_ATTEMPT)
        sent += send(rt, clients, batch) if batch is not None else 0
    for batch_id in batch_store.stale(rt.engine, "sending", limits.resend_after_s):
        batch = batch_store.take(
            rt.engine, batch_id, "sending", "sending", stale_before=stale_before, send_attempts=NEXT_ATTEMPT
        )
        sent += send(rt, clients, batch) if batch is not None else 0
    return sent


def send(rt: JobServices, clients: BatchClients, batch: ProviderBatch) -> int:
    """Submit one batch the caller moved to ``sending``; 1 if the provider has it now."""
    jobs = batch_store.members(rt.engine, batch.id)
    if not jobs:  # every member left the lane (expired leases): nothing to send
        batch_store.take(
            rt.engine, batch.id, "sending", "done", finished_at=utcnow(), error_message="No jobs."
        )
        return 0
    if batch.provider not in rt.settings.providers or batch.model not in rt.settings.models:
        _give_up(rt, batch, jobs, "provider_batch_unknown_model", "The batch's model left the config.")
        return 0
    client = clients.get(batch.provider)
    try:
        # Only a resumed send can find a batch it created before a crash.
        remote = client.find_tagged(batch.id) if batch.send_attempts > 1 else None
        if remote is None:
            remote = client.create(_input_file(rt, client, batch, jobs), CHAT_ENDPOINT, batch.id)
    except ProviderError as error:
        _send_failed(rt, batch, jobs, error)
        return 0
    batch_store.take(
        rt.engine,
        batch.id,
        "sending",
        "submitted",
        remote_id=remote.id,
        remote_status=remote.status,
        submitted_at=utcnow(),
        error_message=None,
    )
    log.info("provider_batch_submitted", batch=batch.id, remote=remote.id, model=batch.model, lines=len(jobs))
    return 1


def _input_file(rt: JobServices, client: BatchClient, batch: ProviderBatch, jobs: list[Job]) -> str:
    if batch.input_file_id:
        return batch.input_file_id
    model = rt.settings.models[batch.model]
    data = b"".join(encode_line(request_line(job, model, _default_max_tokens(rt, job))) for job in jobs)
    file_id = client.upload(f"{batch.id}.jsonl", data)
    batch_store.take(rt.engine, batch.id, "sending", "sending", input_file_id=file_id)
    return file_id


def _default_max_tokens(rt: JobServices, job: Job) -> int:
    tier = rt.settings.tiers.get(job.tier)  # a tier that left the config: the schema's default
    return (
        tier.default_max_tokens if tier is not None else TierConfig.model_fields["default_max_tokens"].default
    )


def _send_failed(rt: JobServices, batch: ProviderBatch, jobs: list[Job], error: ProviderError) -> None:
    log.warning("provider_batch_send_failed", batch=batch.id, code=error.code, attempt=batch.send_attempts)
    if error.retryable and batch.send_attempts < rt.settings.provider_batches.max_send_attempts:
        # Stays `sending`: taken up again after resend_after_s, from the recorded file if any.
        batch_store.take(rt.engine, batch.id, "sending", "sending", error_message=error.message[:2000])
        return
    _give_up(rt, batch, jobs, f"provider_batch_{error.code}", error.message)


def _give_up(rt: JobServices, batch: ProviderBatch, jobs: list[Job], code: str, message: str) -> None:
    # The jobs run individually on the live lane; the batch row ends with the reason.
    for job in jobs:
        fall_back(rt, job, batch, ProviderBatchEnded(code, message))
    batch_store.take(
        rt.engine, batch.id, "sending", "done", finished_at=utcnow(), error_message=message[:2000]
    )
