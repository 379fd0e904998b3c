"""The worker policy chain, listed in one place.

Order matters: ``before_call`` runs top to bottom, ``after_call`` bottom to top. Adding a
policy is adding a module here and a line to :func:`default_chain`.
"""

from __future__ import annotations

from workers.cache.results import ResultCache
from workers.chain import PolicyChain
from workers.middleware.call_log import CallLog
from workers.middleware.rate_limit import RateLimiting
from workers.middleware.result_cache import ResultCaching
from workers.middleware.retry import RetryWithBackoff
from workers.middleware.routing import Routing
from workers.middleware.usage import UsageRecording
from workers.providers.registry import ProviderRegistry
from workers.ratelimit.limiter import Limiter


def default_chain(limiter: Limiter, providers: ProviderRegistry, results: ResultCache) -> PolicyChain:
    """The chain every job attempt runs through."""
    return PolicyChain(
        [
            CallLog(),
            RetryWithBackoff(),
            UsageRecording(),
            ResultCaching(results),
            Routing(),
            RateLimiting(limiter, providers),
        ]
    )
