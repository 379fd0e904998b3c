"""The semantic cache's second stage: the two questions compared token by token.

The first stage compares one vector per question, and a synonym for the key noun is enough to
pull a true paraphrase under the threshold, while a question that adds one word ("tie a
tie" / "tie a bow tie") stays above it. The second stage looks at how the questions' words
align: each token's contextual MiniLM embedding is matched with its closest token in the other
question, and a logistic model over how well they align (:data:`FEATURES`) gives the
probability that the two ask the same thing.

No package on the index ships a cross-encoder or NLI model's weights for offline use (checked
on 2026-12-07: docs/caching.md), so the model is this logistic head over the MiniLM that
already ships offline, trained by ``bench/train_pair_check.py`` on the development half of
the evaluation set only, and kept in ``pair_check.json`` beside this module: eight
coefficients, no download, no new dependency at run time.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from importlib import resources
from typing import Any, Protocol

import numpy as np

FEATURES = (
    "cosine",  # the first stage's similarity
    "alignment",  # mean best-match similarity of the tokens, both ways
    "alignment_gap",  # how much better one side is covered than the other (an added word)
    "weakest",  # the worst-matched token
    "second_weakest",
    "unmatched_0_6",  # share of tokens with no match above 0.6
    "unmatched_0_8",
    "length_gap",  # difference in token counts, relative
)
WEIGHTS_FILE = "pair_check.json"
REMEMBERED_TEXTS = 1024  # token rows kept per process (about 15 KB a question)


class TokenEmbedder(Protocol):
    def token_vectors(self, texts: list[str]) -> list[np.ndarray]: ...


def features(a: np.ndarray, b: np.ndarray, cosine: float) -> np.ndarray:
    """:data:`FEATURES` of two questions' token rows (L2-normalised); symmetric in a and b."""
    scores = a @ b.T
    best_a, best_b = scores.max(axis=1), scores.max(axis=0)
    both = np.sort(np.concatenate([best_a, best_b]))
    return np.array(
        [
            cosine,
            (best_a.mean() + best_b.mean()) / 2,
            abs(best_a.mean() - best_b.mean()),
            both[0],
            both[1] if len(both) > 1 else both[0],
            (both < 0.6).mean(),
            (both < 0.8).mean(),
            abs(len(best_a) - len(best_b)) / max(len(best_a), len(best_b)),
        ],
        dtype=np.float64,
    )


@dataclass(frozen=True)
class PairModel:
    """A logistic model over standardised :data:`FEATURES`, and the cut it was chosen with."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    min_probability: float
    threshold: float  # the first-stage threshold the cut was chosen with
    check_below: float  # candidates at or above this similarity skip the check
    trained_on: dict[str, Any]

    def probability(self, row: np.ndarray) -> float:
        z = float(((row - self.mean) / self.scale) @ self.coef + self.intercept)
        return 1.0 / (1.0 + float(np.exp(-z)))

    def to_json(self) -> dict[str, Any]:
        return {
            "features": list(FEATURES),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
            "min_probability": self.min_probability,
            "threshold": self.threshold,
            "check_below": self.check_below,
            "trained_on": self.trained_on,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PairModel:
        if tuple(data["features"]) != FEATURES:
            raise ValueError(f"{WEIGHTS_FILE} was trained on other features: retrain it")
        return cls(
            mean=np.array(data["mean"]),
            scale=np.array(data["scale"]),
            coef=np.array(data["coef"]),
            intercept=float(data["intercept"]),
            min_probability=float(data["min_probability"]),
            threshold=float(data["threshold"]),
            check_below=float(data["check_below"]),
            trained_on=dict(data.get("trained_on", {})),
        )


def packaged_model() -> PairModel:
    """The model shipped in ``pair_check.json``."""
    text = resources.files("workers.cache").joinpath(WEIGHTS_FILE).read_text(encoding="utf-8")
    return PairModel.from_json(json.loads(text))


class PairCheck:
    """Runs the model on a query and a candidate that passed the first stage below ``check_below``."""

    def __init__(
        self, embedder: TokenEmbedder, model: PairModel | None = None, remembered: int = REMEMBERED_TEXTS
    ) -> None:
        self.embedder = embedder
        self._model = model
        self.remembered = remembered
        self._rows: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def model(self) -> PairModel:
        if self._model is None:
            self._model = packaged_model()
        return self._model

    def applies(self, similarity: float) -> bool:
        return similarity < self.model.check_below

    def probability(self, query: str, cached: str, similarity: float) -> float:
        a, b = self.token_rows([query, cached])
        return self.model.probability(features(a, b, similarity))

    def token_rows(self, texts: list[str]) -> list[np.ndarray]:
        """The texts' token rows, from one forward pass of those not seen lately.

        A lookup checks up to five candidates against one query, and popular entries are
        candidates again and again: each text is encoded once while it stays among the
        ``remembered`` most recent.
        """
        with self._lock:
            known = {text: self._rows[text] for text in texts if text in self._rows}
            for text in known:
                self._rows.move_to_end(text)
        missing = [text for text in dict.fromkeys(texts) if text not in known]
        if missing:
            known.update(zip(missing, self.embedder.token_vectors(missing), strict=True))
            with self._lock:
                self._rows.update((text, known[text]) for text in missing)
                while len(self._rows) > self.remembered:
                    self._rows.popitem(last=False)
        return [known[text] for text in texts]

    def same_question(self, query: str, cached: str, similarity: float) -> bool:
        """False when the model finds the pair too unlikely to ask the same thing."""
        if not self.applies(similarity):
            return True
        return self.probability(query, cached, similarity) >= self.model.min_probability
