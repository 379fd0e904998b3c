"""What the policy chain, the job runner and the provider batch lane ask of a process's
runtime, as protocols.

A worker's :class:`workers.runtime.Runtime` has every part. The chain's builder, the runner
and the lane name only these protocols, not the runtime: the runtime builds the chain, whose
middleware use the lane's modules, so importing the runtime from them would close a loop.
"""

from __future__ import annotations

from typing import Protocol

from redis import Redis
from sqlalchemy.engine import Engine

from schemas.settings import Settings
from workers.budgets.control import BudgetControl
from workers.cache.results import ResultCache
from workers.chain import PolicyChain
from workers.dispatch import Dispatcher
from workers.keys import RedisKeys
from workers.outcomes import Outcomes
from workers.providers.registry import ProviderRegistry
from workers.ratelimit.limiter import Limiter
from workers.ratelimit.policy import TenantLimits


class JobServices(Protocol):
    """The parts of a runtime that run an attempt, or settle a provider batch's line."""

    @property
    def settings(self) -> Settings: ...
    @property
    def engine(self) -> Engine: ...
    @property
    def providers(self) -> ProviderRegistry: ...
    @property
    def dispatcher(self) -> Dispatcher: ...
    @property
    def outcomes(self) -> Outcomes: ...
    @property
    def chain(self) -> PolicyChain: ...


class ChainServices(Protocol):
    """The process's parts the middleware use (a worker's ``Runtime`` has them all)."""

    @property
    def engine(self) -> Engine: ...
    @property
    def redis(self) -> Redis: ...
    @property
    def keys(self) -> RedisKeys: ...
    @property
    def limiter(self) -> Limiter: ...
    @property
    def providers(self) -> ProviderRegistry: ...
    @property
    def results(self) -> ResultCache: ...
    @property
    def dispatcher(self) -> Dispatcher: ...
    @property
    def tenant_limits(self) -> TenantLimits: ...
    @property
    def budgets(self) -> BudgetControl: ...
