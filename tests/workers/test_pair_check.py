"""The semantic cache's second stage: token-alignment features, the packaged model, the cut."""

from __future__ import annotations

import numpy as np
import pytest

from workers.cache.matching import SemanticMatcher
from workers.cache.pair_check import FEATURES, PairCheck, PairModel, features, packaged_model
from workers.providers.embedder import Embedder


def unit_rows(seed: int, count: int) -> np.ndarray:
    rows = np.random.default_rng(seed).normal(size=(count, 384))
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_features_are_symmetric_and_named() -> None:
    a, b = unit_rows(1, 7), unit_rows(2, 4)
    assert len(features(a, b, 0.8)) == len(FEATURES)
    assert np.allclose(features(a, b, 0.8), features(b, a, 0.8))


def test_identical_questions_align_perfectly() -> None:
    a = unit_rows(3, 5)
    row = dict(zip(FEATURES, features(a, a, 1.0), strict=True))
    assert row["alignment"] == pytest.approx(1.0)
    assert row["weakest"] == pytest.approx(1.0)
    assert row["unmatched_0_8"] == 0.0 and row["length_gap"] == 0.0


class FixedTokens:
    """Token rows chosen per text, so the features (and the model's answer) are known."""

    def __init__(self, rows: dict[str, np.ndarray]) -> None:
        self.rows = rows
        self.calls = 0
        self.encoded: list[str] = []

    def token_vectors(self, texts: list[str]) -> list[np.ndarray]:
        self.calls += 1
        self.encoded += texts
        return [self.rows[text] for text in texts]


def alignment_only_model(min_probability: float, check_below: float) -> PairModel:
    """Probability rises with the alignment feature alone; zero mean, unit scale."""
    coef = np.zeros(len(FEATURES))
    coef[FEATURES.index("alignment")] = 20.0
    return PairModel(
        mean=np.zeros(len(FEATURES)),
        scale=np.ones(len(FEATURES)),
        coef=coef,
        intercept=-15.0,  # p = 0.5 at alignment 0.75
        min_probability=min_probability,
        threshold=0.7,
        check_below=check_below,
        trained_on={},
    )


def test_the_check_refuses_a_poorly_aligned_pair_and_skips_sure_ones() -> None:
    same = unit_rows(4, 6)
    tokens = FixedTokens({"q": same, "same": same, "other": unit_rows(5, 6)})
    check = PairCheck(tokens, alignment_only_model(min_probability=0.5, check_below=0.95))

    assert check.same_question("q", "same", 0.8)
    assert not check.same_question("q", "other", 0.8)
    calls = tokens.calls
    assert check.same_question("q", "other", 0.97)  # above check_below: the first stage is sure
    assert tokens.calls == calls


def test_each_text_is_encoded_once_while_it_is_remembered() -> None:
    tokens = FixedTokens({name: unit_rows(seed, 4) for seed, name in enumerate(["q", "a", "b", "c"])})
    check = PairCheck(tokens, alignment_only_model(0.5, 0.95), remembered=3)

    for candidate in ("a", "b", "a"):
        check.probability("q", candidate, 0.8)
    assert tokens.encoded == ["q", "a", "b"]  # the query once, "a" once
    check.probability("q", "c", 0.8)  # "b", the least recently used of four, is forgotten
    check.probability("q", "a", 0.8)
    check.probability("q", "b", 0.8)
    assert tokens.encoded == ["q", "a", "b", "c", "b"]


def test_the_matcher_names_the_second_stage_when_it_refuses() -> None:
    tokens = FixedTokens({"How do I reset my password?": unit_rows(6, 6), "Reset it how?": unit_rows(7, 3)})
    matcher = SemanticMatcher(0.7, PairCheck(tokens, alignment_only_model(0.5, 0.95)))

    assert matcher.accept("How do I reset my password?", "Reset it how?", 0.8) == (False, "second_stage")
    tokens.rows["Again"] = tokens.rows["How do I reset my password?"]
    assert matcher.accept("How do I reset my password?", "Again", 0.8) == (True, None)


def test_the_packaged_model_loads_and_was_trained_on_the_development_half_only() -> None:
    model = packaged_model()
    assert model.trained_on["data"].endswith("dev.jsonl")
    assert 0.0 < model.min_probability < 1.0 and 0.0 < model.threshold <= model.check_below


def test_the_real_model_tells_a_paraphrase_from_a_different_question() -> None:
    check = PairCheck(Embedder())
    paraphrase = check.probability("How do I reset my password?", "How can I reset my password?", 0.95)
    different = check.probability("How do I tie a tie?", "How do I tie a bow tie on a gift box?", 0.7)
    assert paraphrase > different
