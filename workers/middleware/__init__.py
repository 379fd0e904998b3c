"""The worker policy chain, listed in one place.

Order matters: ``before_call`` runs top to bottom, ``after_call``, ``on_error`` and
``after_attempt`` bottom to top. Adding a policy is adding a module here and a line to
:func:`default_chain`. The first four decide whether the attempt makes a call at all; the
rest are the policies around it.
"""

from __future__ import annotations

from workers.chain import PolicyChain
from workers.kill_switch_board import KillSwitchBoard
from workers.middleware.backlog import TenantBacklog
from workers.middleware.budget import BudgetReservation
from workers.middleware.cache_verification import ShadowVerification
from workers.middleware.call_log import CallLog
from workers.middleware.kill_switch import KillSwitchGate
from workers.middleware.max_attempts import MaxAttemptsGate
from workers.middleware.metrics import AttemptMetrics
from workers.middleware.provider_batch import ProviderBatchParking
from workers.middleware.rate_limit import RateLimiting
from workers.middleware.result_cache import ResultCaching
from workers.middleware.retry import RetryWithBackoff
from workers.middleware.routing import Routing
from workers.middleware.soft_time_limit import SoftTimeLimit
from workers.middleware.tenant_slot import TenantRunningSlot
from workers.middleware.token_stream import TokenStreaming
from workers.middleware.usage import UsageRecording
from workers.services import ChainServices


def default_chain(services: ChainServices) -> PolicyChain:
    """The chain every job attempt runs through."""
    kill_switches = KillSwitchBoard(services.redis, services.keys, services.engine)
    return PolicyChain(
        [
            AttemptMetrics(),  # first: its after-call hooks run last and see every decision
            TenantBacklog(services.dispatcher),
            MaxAttemptsGate(),
            ProviderBatchParking(services.engine, kill_switches),
            TenantRunningSlot(services.limiter, services.tenant_limits),
            CallLog(),
            RetryWithBackoff(),
            UsageRecording(),
            ShadowVerification(services.engine, services.dispatcher, services.results),
            ResultCaching(services.results),
            Routing(),
            KillSwitchGate(kill_switches),
            RateLimiting(services.limiter, services.providers),
            BudgetReservation(services.budgets, services.providers, services.engine, services.dispatcher),
            TokenStreaming(services.redis, services.keys),
            SoftTimeLimit(),
        ]
    )
