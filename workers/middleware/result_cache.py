"""Result caching in the worker: store each fresh answer for the next identical request.

The API answers exact hits itself, before a job is queued (api/submission.py). The worker
stores what the provider answered under the key the API computed (``job.cache["key"]``),
with the job's TTL, unless the job's cache mode is ``off``.
"""

from __future__ import annotations

from workers.cache.results import CachedResult, ResultCache
from workers.chain import CallContext, Middleware
from workers.middleware.usage import call_cost_usd


class ResultCaching(Middleware):
    """Writes successful answers to the exact cache."""

    def __init__(self, results: ResultCache) -> None:
        self.results = results

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
            cost_usd=call_cost_usd(ctx.route.model, completion.usage),
        )
        self.results.store(job.tenant_id, job.tier, cache["key"], fresh, int(cache["ttl_s"]))
