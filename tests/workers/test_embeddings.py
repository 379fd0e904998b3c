"""all-MiniLM-L6-v2 from the installed wheel, offline: shapes, normalisation, similarity, micro-batching."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from workers.providers.embedder import DIMENSION, Embedder

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    """One model load for the whole module."""
    return Embedder()


@pytest.fixture
def forward_calls(embedder: Embedder) -> Iterator[list[int]]:
    """The model's real forward passes, one entry each, counted by a torch hook."""
    calls: list[int] = []
    handle = embedder.model.register_forward_hook(lambda *_: calls.append(1))
    yield calls
    handle.remove()


def cosine(u: np.ndarray, v: np.ndarray) -> float:
    return float(np.dot(u, v))


def test_rows_are_float32_unit_vectors_of_384(embedder: Embedder) -> None:
    vectors = embedder.embed(["How do I reset my password?", "Bonjour", ""])
    assert vectors.shape == (3, DIMENSION) == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, DIMENSION)


def test_paraphrases_are_closer_than_unrelated_questions(embedder: Embedder) -> None:
    question, paraphrase, unrelated = embedder.embed(
        [
            "How do I reset my password?",
            "What's the way to reset my password?",
            "What is the boiling point of water at sea level?",
        ]
    )
    assert cosine(question, paraphrase) > 0.8
    assert cosine(question, unrelated) < 0.3
    assert cosine(question, paraphrase) > cosine(question, unrelated) + 0.5


def test_texts_go_through_the_model_64_at_a_time(embedder: Embedder, forward_calls: list[int]) -> None:
    before = embedder.forward_passes
    vectors = embedder.embed([f"support question number {i}" for i in range(130)])
    assert vectors.shape == (130, DIMENSION)
    assert len(forward_calls) == embedder.forward_passes - before == 3


def test_embed_one_from_8_threads_shares_forward_passes(embedder: Embedder, forward_calls: list[int]) -> None:
    texts = [
        "How do I reset my password?",
        "Is it safe to take ibuprofen with food?",
        "What is the capital of Australia?",
        "How do I sort a dictionary by value in Python?",
        "Do I need a visa to visit Japan?",
        "Summarise this article",
        "Why is the sky blue?",
        "How long does shipping take?",
    ]
    expected = embedder.embed(texts)
    forward_calls.clear()
    batches_before = embedder.batches
    start = threading.Barrier(len(texts))

    def lookup(text: str) -> np.ndarray:
        start.wait()
        return embedder.embed_one(text)

    with ThreadPoolExecutor(max_workers=len(texts)) as pool:
        vectors = list(pool.map(lookup, texts))

    for text, vector, row in zip(texts, vectors, expected, strict=True):
        assert vector.shape == (DIMENSION,)
        np.testing.assert_allclose(vector, row, atol=1e-5, err_msg=text)
    assert 1 <= len(forward_calls) < len(texts)
    assert embedder.batches - batches_before == len(forward_calls)


def test_a_failing_batch_raises_in_its_callers() -> None:
    class Broken:
        def encode(self, *args: object, **kwargs: object) -> np.ndarray:
            raise RuntimeError("model unavailable")

    broken = Embedder(loader=Broken)
    with pytest.raises(RuntimeError, match="model unavailable"):
        broken.embed_one("anything")
