"""Result caching in the worker: the semantic lookup, and storing fresh answers.

The API answers exact hits itself, before a job is queued (api/submission.py). For a job in
``semantic`` mode the worker looks for a close earlier question before routing; a hit
answers the job with no provider call. Every fresh answer is stored under the exact key the
API computed (``job.cache["key"]``) and, in semantic mode, in the semantic cache too, with
the job's TTL. Jobs in mode ``off`` are neither looked up nor stored. Embedding jobs use the
exact cache only: the API never gives them ``semantic`` mode, and the lookup checks again.
A provider batch's answer is stored the same way, at the batch price it cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.openai import ChatCompletion, ChatRequest
from workers.cache.results import CachedResult, ResultCache
from workers.chain import CallContext, Middleware
from workers.middleware.usage import route_cost_usd
from workers.providers.base import ProviderResponse


@dataclass
class SemanticProbe:
    """What the semantic lookup computed (namespace, text, embedding), to store the answer under."""

    probe: Any = None


class ResultCaching(Middleware):
    """Answers semantic hits; writes fresh answers to the caches."""

    def __init__(self, results: ResultCache) -> None:
        self.results = results

    def before_call(self, ctx: CallContext) -> None:
        job = ctx.job
        if job.cache_mode != "semantic" or job.kind != "chat":
            return
        probe = ctx.state(SemanticProbe)
        hit, probe.probe = self.results.lookup_similar(job.tenant_id, job.tier, job.request, call_limit(ctx))
        if hit is not None:  # answered with no call: not an attempt
            ctx.answered = hit.as_job_fields(job.cache or {})
            ctx.response = ProviderResponse(completion=ChatCompletion.model_validate(hit.result))

    def after_call(self, ctx: CallContext) -> None:
        job, cache = ctx.job, ctx.job.cache or {}
        if job.cache_mode == "off" or not cache.get("key") or not ctx.called:
            return
        assert ctx.route is not None and ctx.response is not None
        completion = ctx.response.completion
        fresh = CachedResult(
            source_job=job.id,
            result=completion.model_dump(mode="json"),
            model=ctx.route.alias,
            provider=ctx.route.provider,
            cost_usd=route_cost_usd(ctx.route, completion.usage),
        )
        self.results.store(job.tenant_id, job.tier, cache["key"], fresh, int(cache["ttl_s"]))
        probe = ctx.state(SemanticProbe).probe if job.cache_mode == "semantic" else None
        if probe is not None:
            self.results.store_similar(probe, fresh, int(cache["ttl_s"]))


def call_limit(ctx: CallContext) -> int | None:
    """The length limit the job's call will have: the request's own, else its tier's default.

    A cached answer serves a request only if it fits that limit (``namespaces.serves``);
    Routing sends a request that sets none with the tier's ``default_max_tokens``.
    """
    tier = ctx.settings.tiers.get(ctx.job.tier)
    if tier is None or not isinstance(ctx.request, ChatRequest):  # routing fails such a job
        return None
    return ctx.request.with_default_max_tokens(tier.default_max_tokens).requested_max_tokens()
