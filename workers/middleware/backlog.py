"""The tenant's backlog count: a job a worker took off its queue is counted off its tenant's backlog.

The dispatcher counts each tenant's queued jobs to order their messages fairly
(workers/dispatch.py). The count goes down as a rider on the attempt's first Redis round trip
(the tenant slot's acquire, or the announcement of a job that ends at once), or on its own
after the attempt when no round trip took it (a job parked for a provider batch).
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.client import Pipeline

from workers.chain import CallContext, Middleware
from workers.dispatch import Dispatcher


@dataclass
class BacklogCount:
    """Whether the count went out on a round trip of the attempt."""

    queued: bool = False


class TenantBacklog(Middleware):
    """Counts the claimed job off its tenant's backlog, once."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    def before_call(self, ctx: CallContext) -> None:
        count = ctx.state(BacklogCount)
        tier, tenant_id = ctx.job.tier, ctx.job.tenant_id

        def count_off(pipe: Pipeline) -> None:
            self.dispatcher.taken(tier, tenant_id, pipe)
            count.queued = True

        ctx.riders.append(count_off)

    def after_attempt(self, ctx: CallContext, settled: bool) -> None:
        # Once only: a round trip that took the count and then failed may have run it.
        if not ctx.state(BacklogCount).queued:
            self.dispatcher.taken(ctx.job.tier, ctx.job.tenant_id)
