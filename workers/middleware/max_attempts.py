"""The attempts cap: a job claimed more than ``max_attempts`` times fails with ``max_attempts``.

Routing fails a job whose models are all used up; this gate catches a job that keeps coming
back without using them up, such as one whose worker dies mid-call again and again (the
reconciler requeues it when its lease ends). It runs before anything takes capacity.
"""

from __future__ import annotations

from schemas.errors import MaxAttemptsExceeded
from workers.chain import CallContext, Middleware


class MaxAttemptsGate(Middleware):
    """Fails the attempt before any policy or call once the job is past its attempts."""

    def before_call(self, ctx: CallContext) -> None:
        limit = ctx.settings.max_attempts
        if ctx.job.attempts > limit:
            raise MaxAttemptsExceeded(f"The job used all {limit} attempts.")
