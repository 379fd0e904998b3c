"""The interface every provider adapter implements."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar, runtime_checkable

from schemas.openai import ChatCompletion, ChatRequest, EmbeddingList, EmbeddingRequest
from schemas.settings import ModelConfig

Completion = TypeVar("Completion", ChatCompletion, EmbeddingList)


@dataclass(frozen=True)
class ProviderResponse(Generic[Completion]):
    """A validated completion (or embeddings list) plus the response headers a limiter may read.

    ``batch_size`` is how many calls shared the provider call that answered this one.
    """

    completion: Completion
    headers: dict[str, str] = field(default_factory=dict)
    batch_size: int = 1


@dataclass(frozen=True)
class AdapterTraits:
    """What an adapter class can do, read without building it (``registry.adapter_traits``)."""

    runs_in_worker: bool = False  # the model runs in the worker process, not behind an endpoint
    batch_api: bool = False  # speaks the Files and Batches API (docs/provider-batches.md)


# What the policy chain holds: the answer of a chat or of an embeddings call.
AnyResponse = ProviderResponse[ChatCompletion] | ProviderResponse[EmbeddingList]


class Provider(Protocol):
    """An adapter: turns a chat (or embeddings) request for one model into a validated answer.

    Implementations raise only :class:`schemas.errors.ProviderError` subclasses.
    """

    def estimate_prompt_tokens(self, request: ChatRequest | EmbeddingRequest) -> int:
        """The request's prompt tokens, before the call, for the rate limiter."""
        ...

    def complete(
        self, request: ChatRequest, model: ModelConfig, timeout_s: float
    ) -> ProviderResponse[ChatCompletion]:
        """Run one chat completion."""
        ...

    def embed(
        self, request: EmbeddingRequest, model: ModelConfig, timeout_s: float
    ) -> ProviderResponse[EmbeddingList]:
        """Embed every input of the request; the response holds an :class:`EmbeddingList`."""
        ...

    def close(self) -> None:
        """Release connections and memory."""
        ...


@runtime_checkable
class StreamingProvider(Protocol):
    """An adapter that can also hand over a chat answer's text as it is generated."""

    def stream_complete(
        self, request: ChatRequest, model: ModelConfig, timeout_s: float, on_text: Callable[[str], None]
    ) -> ProviderResponse[ChatCompletion]:
        """Run one chat completion, calling ``on_text`` with each piece of text as it arrives."""
        ...
