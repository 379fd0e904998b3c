"""The task's soft time limit, turned into a typed, retryable timeout of the provider call.

Celery raises ``SoftTimeLimitExceeded`` in the task when its soft limit passes. During the
call it becomes ``ProviderTimeout``, so the job is handed back now, through the chain like
any other timeout, instead of waiting for its lease to expire.
"""

from __future__ import annotations

from celery.exceptions import SoftTimeLimitExceeded

from schemas.errors import ProviderTimeout
from workers.chain import CallContext, Middleware, ProviderCall
from workers.providers.base import AnyResponse


class SoftTimeLimit(Middleware):
    """Wraps the provider call: the soft limit is a provider timeout."""

    def wrap_call(self, ctx: CallContext, call: ProviderCall) -> ProviderCall:
        def limited(ctx: CallContext) -> AnyResponse:
            try:
                return call(ctx)
            except SoftTimeLimitExceeded as exc:
                raise ProviderTimeout("The call outran the task's soft time limit.") from exc

        return limited
