"""Ending a job's stay in a provider batch: succeeded, failed, or back to the live lane.

Every change is conditional on the job's lane lease (its lease token is the batch id), so a
merge run twice, or a job that already left the lane, is never written twice. Each line is
one provider call, settled through the policy chain's after-call hooks like a live call
(``PolicyChain.record``): the ``provider_call`` log line, the attempt entry (marked
``lane: provider_batch``) and usage row at the batch price, the cache entry; an answer or a
permanent error is then written and announced as the live lane writes it
(``job_runner.settle``). A job sent back to the live lane keeps its lane attempt entry and
runs again at once; it writes no usage row.
"""

from __future__ import annotations

from schemas.errors import ProviderError, SwitchyardError
from schemas.jobs import parse_request
from schemas.openai import ChatCompletion
from schemas.settings import ModelConfig, Settings
from schemas.tables import Job, ProviderBatch, utcnow
from workers import store
from workers.chain import CallContext, Route
from workers.job_runner import settle
from workers.providers.base import ProviderResponse
from workers.services import JobServices


class ProviderBatchEnded(SwitchyardError):
    """The provider batch ended without this job's answer, so the job runs live; ``code`` says how."""

    retryable = True

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code  # type: ignore[misc]  # one class, one code per way a batch ends


def succeed(rt: JobServices, job: Job, batch: ProviderBatch, completion: ChatCompletion) -> None:
    """Write the provider's answer into the job at the batch price."""
    if batch.model not in rt.settings.models:  # the alias left the config: run the job live
        message = f"Model {batch.model!r} is not configured."
        fall_back(rt, job, batch, ProviderBatchEnded("provider_batch_unknown_model", message))
        return
    ctx = _line_context(rt, job, batch)
    ctx.response = ProviderResponse(completion=completion)
    rt.chain.record(ctx)
    if ctx.error is not None and ctx.error.retryable:  # a policy turned the answer down
        _run_live(rt, ctx)
    else:
        settle(rt, ctx)


def fail(rt: JobServices, job: Job, batch: ProviderBatch, error: ProviderError) -> None:
    """End the job with the typed error the provider's line answered (not retryable)."""
    ctx = _line_context(rt, job, batch)
    ctx.error = error
    rt.chain.record(ctx)
    settle(rt, ctx)


def fall_back(rt: JobServices, job: Job, batch: ProviderBatch, error: SwitchyardError) -> None:
    """Send the job back to the live lane to run on its own; the lane try stays an attempt."""
    ctx = _line_context(rt, job, batch)
    ctx.error = error
    rt.chain.record(ctx)
    _run_live(rt, ctx)


def _run_live(rt: JobServices, ctx: CallContext) -> None:
    job, error = ctx.job, ctx.error
    assert error is not None
    history = [*(job.attempt_log or []), {**ctx.attempt_record, "message": error.message[:300]}]
    if store.hand_back(rt.engine, job, utcnow(), published=False, attempt_log=history):
        # Commit, publish, mark: a crash in between leaves an orphan the reconciler publishes.
        rt.dispatcher.publish(job.id, job.tier, job.priority, job.tenant_id)
        store.mark_published(rt.engine, [job.id])


def _line_context(rt: JobServices, job: Job, batch: ProviderBatch) -> CallContext:
    """The context of the line's call: routed to the batch's model, timed from the claim."""
    ctx = CallContext(
        job=job,
        settings=rt.settings,
        request=parse_request(job.kind, job.request),
        route=_lane_route(rt.settings, batch),
    )
    started = job.started_at or job.created_at
    ctx.latency_ms = round((utcnow() - started).total_seconds() * 1000, 2)
    return ctx


def _lane_route(settings: Settings, batch: ProviderBatch) -> Route:
    # The batch's provider served the line even if the alias has moved or left the config since
    # (a model that left it has no prices: its line is only recorded, never priced).
    model = settings.models.get(batch.model)
    if model is None:
        model = ModelConfig.model_validate({"provider": batch.provider, "model": batch.model})
    if model.provider != batch.provider:
        model = model.model_copy(update={"provider": batch.provider})
    return Route(batch.model, model, provider_batch=batch.id)
