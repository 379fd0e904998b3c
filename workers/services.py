"""What the job runner and the provider batch lane ask of a process's runtime, as a protocol.

A worker's :class:`workers.runtime.Runtime` has every part. The runner and the lane name
only this protocol, not the runtime: the runtime builds the policy chain, whose middleware
use the lane's modules, so importing the runtime from them would close a loop.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.engine import Engine

from schemas.settings import Settings
from workers.chain import PolicyChain
from workers.dispatch import Dispatcher
from workers.outcomes import Outcomes
from workers.providers.registry import ProviderRegistry


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
