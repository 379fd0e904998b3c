"""Ending a job's stay in a provider batch: succeeded, failed, or back to the live lane.

Every change is conditional on the job's lane lease (its lease token is the batch id), so a
merge run twice, or a job that already left the lane, is never written twice. Each line is
one provider call: one attempt entry (marked ``lane: provider_batch``), one usage row when
the provider answered it, one ``provider_call`` log line, and the final state announced.
"""

from __future__ import annotations

from typing import Any

import structlog

from schemas.errors import ProviderError
from schemas.openai import ChatCompletion
from schemas.tables import Job, ProviderBatch, Usage, utcnow
from workers import store
from workers.cache.results import CachedResult
from workers.provider_batches.lines import batch_cost_usd
from workers.runtime import Runtime

log = structlog.get_logger("switchyard.provider_call")
LANE = "provider_batch"


def succeed(rt: Runtime, job: Job, batch: ProviderBatch, completion: ChatCompletion) -> None:
    """Write the provider's answer into the job at the batch price."""
    model = rt.settings.models.get(batch.model)
    if model is None:  # the alias left the config: run the job live on what its tier has now
        fall_back(rt, job, batch, "provider_batch_unknown_model", f"Model {batch.model!r} is not configured.")
        return
    usage = completion.usage
    cost = batch_cost_usd(model, usage)
    entry = _entry(job, batch, "ok", usage.prompt_tokens, usage.completion_tokens, cost)
    final = store.finish_job(
        rt.engine,
        job,
        _usage_row(job, batch, entry),
        status="succeeded",
        result=completion.model_dump(mode="json"),
        model=batch.model,
        provider=batch.provider,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        latency_ms=entry["latency_ms"],
        cost_usd=job.cost_usd + cost,
        attempt_log=[*(job.attempt_log or []), entry],
        error_code=None,
        error_message=None,
        finished_at=utcnow(),
    )
    if final is not None:
        _cache(rt, final, cost)
        rt.outcomes.announce_job(final)


def fail(rt: Runtime, job: Job, batch: ProviderBatch, error: ProviderError) -> None:
    """End the job with the typed error the provider's line answered (not retryable)."""
    entry = _entry(job, batch, error.code)
    final = store.fail_job(
        rt.engine,
        job,
        error.code,
        error.message,
        usage=_usage_row(job, batch, entry),
        attempt_log=[*(job.attempt_log or []), entry],
    )
    if final is not None:
        rt.outcomes.announce_job(final)


def fall_back(rt: Runtime, job: Job, batch: ProviderBatch, code: str, message: str) -> None:
    """Send the job back to the live lane to run on its own; the lane try stays an attempt."""
    entry = {**_entry(job, batch, code), "message": message[:300]}
    history = [*(job.attempt_log or []), entry]
    if store.hand_back(rt.engine, job, utcnow(), published=False, attempt_log=history):
        # Commit, publish, mark: a crash in between leaves an orphan the reconciler publishes.
        rt.dispatcher.publish(job.id, job.tier, job.priority, job.tenant_id)
        store.mark_published(rt.engine, [job.id])


def _entry(
    job: Job, batch: ProviderBatch, outcome: str, prompt: int = 0, completion: int = 0, cost: float = 0.0
) -> dict[str, Any]:
    started = job.started_at or job.created_at
    entry = {
        "attempt": job.attempts,
        "model": batch.model,
        "provider": batch.provider,
        "outcome": outcome,
        "latency_ms": round((utcnow() - started).total_seconds() * 1000, 2),
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "cost_usd": round(cost, 8),
        "lane": LANE,
        "provider_batch": batch.id,
    }
    log.info(
        "provider_call",
        job=job.id,
        tenant=job.tenant_id,
        tier=job.tier,
        **{
            name: entry[name]
            for name in ("model", "provider", "latency_ms", "prompt_tokens", "completion_tokens", "cost_usd")
        },
        cache=None,
        attempt=job.attempts,
        outcome=outcome,
        lane=LANE,
        provider_batch=batch.id,
    )
    return entry


def _usage_row(job: Job, batch: ProviderBatch, entry: dict[str, Any]) -> Usage:
    return Usage(
        job_id=job.id,
        tenant_id=job.tenant_id,
        tier=job.tier,
        model=batch.model,
        provider=batch.provider,
        attempt=job.attempts,
        prompt_tokens=entry["prompt_tokens"],
        completion_tokens=entry["completion_tokens"],
        cost_usd=entry["cost_usd"],
        latency_ms=entry["latency_ms"],
        outcome=entry["outcome"],
        created_at=utcnow(),
    )


def _cache(rt: Runtime, job: Job, cost: float) -> None:
    # The exact cache takes the answer as a live call's (the API computed the key at submit).
    cache = job.cache or {}
    if job.cache_mode == "off" or not cache.get("key") or job.result is None:
        return
    fresh = CachedResult(
        source_job=job.id,
        result=job.result,
        model=job.model or "",
        provider=job.provider or "",
        cost_usd=cost,
    )
    rt.results.store(job.tenant_id, job.tier, cache["key"], fresh, int(cache["ttl_s"]))
