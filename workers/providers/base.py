"""The interface every provider adapter implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from schemas.openai import ChatCompletion, ChatRequest
from schemas.settings import ModelConfig


@dataclass(frozen=True)
class ProviderResponse:
    """A validated completion plus the response headers a limiter may read."""

    completion: ChatCompletion
    headers: dict[str, str] = field(default_factory=dict)


class Provider(Protocol):
    """An adapter: turns a chat request for one model into a validated completion.

    Implementations raise only :class:`schemas.errors.ProviderError` subclasses.
    """

    def estimate_prompt_tokens(self, request: ChatRequest) -> int:
        """The request's prompt tokens, before the call, for the rate limiter."""
        ...

    def complete(self, request: ChatRequest, model: ModelConfig, timeout_s: float) -> ProviderResponse:
        """Run one chat completion."""
        ...

    def close(self) -> None:
        """Release connections and memory."""
        ...
