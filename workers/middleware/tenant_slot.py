"""The tenant's running-jobs cap: a slot taken before the call, given back when the attempt ends.

The slot is a concurrency grant of the tenant's running bucket (workers/ratelimit/policy.py),
taken in one round trip with the attempt's riders (the backlog count). A tenant at its cap
has the job handed back (``tenant_busy``, not an attempt), with up to half the wait again as
jitter: other tenants' jobs go first, this one soon.

The slot goes back on the round trip that announces the job's end (an end rider), or on its
own when the attempt ends without an announcement (a retry, an error). When settling fails,
the release is sent on its own even if it was queued: the round trip that carried it may not
have run, and freeing a slot twice is harmless (one ``ZREM``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from redis.client import Pipeline

from schemas.errors import TenantBusy
from workers.chain import CallContext, Middleware
from workers.ratelimit.limiter import Grant, Limiter
from workers.ratelimit.policy import TenantLimits, tenant_running_bucket


@dataclass
class SlotRelease:
    """The tenant's running-jobs slot of one attempt, and whether its release was queued."""

    limiter: Limiter
    grant: Grant
    queued: bool = False  # the release rides on the announcement's round trip

    def queue(self, pipe: Pipeline) -> None:
        """Put the release on ``pipe``, the announcement's round trip."""
        self.limiter.settle(self.grant, None, pipe)
        self.queued = True

    def after(self, settled: bool) -> None:
        """Give the slot back unless the attempt settled with the release on its round trip."""
        if not (settled and self.queued):
            self.limiter.settle(self.grant, None)


@dataclass
class HeldSlot:
    """The slot this attempt holds, if it took one."""

    release: SlotRelease | None = None


class TenantRunningSlot(Middleware):
    """Takes a slot of the tenant's running jobs before the call; gives it back after the attempt."""

    def __init__(
        self, limiter: Limiter, tenant_limits: TenantLimits, rng: random.Random | None = None
    ) -> None:
        self.limiter = limiter
        self.tenant_limits = tenant_limits
        self._rng = rng or random.Random()

    def before_call(self, ctx: CallContext) -> None:
        job = ctx.job
        limits = self.tenant_limits.running(job.tenant_id)
        bucket = tenant_running_bucket(job.tenant_id)
        grant = self.limiter.acquire(bucket, limits, 0, along=ctx.take_riders()).grant
        if grant is None:
            wait = ctx.settings.rate_limits.tenant_retry_s
            ctx.retry_in = wait * (1 + self._rng.uniform(0, 0.5))
            raise TenantBusy("The tenant is at its running-jobs limit.", retry_after=wait)
        release = ctx.state(HeldSlot).release = SlotRelease(self.limiter, grant)
        ctx.end_riders.append(release.queue)

    def after_attempt(self, ctx: CallContext, settled: bool) -> None:
        release = ctx.state(HeldSlot).release
        if release is not None:
            release.after(settled)
