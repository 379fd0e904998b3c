"""Train the semantic cache's second stage on the development half, and choose its cut.

Reads ``bench/data/semantic_eval/dev.jsonl`` only (never the test half). For every pair the
guards let through, computes the token-alignment features of ``workers/cache/pair_check.py``
and fits a logistic regression (scikit-learn, standardised features, fixed seed). The cut
(first-stage threshold, the similarity above which the check is skipped, and the least
probability) is chosen by 5-fold cross-validation on the same half: the best recall among the
cuts whose cross-validated precision reaches ``--target-precision``, else the best precision.
The fitted model and the cut go to ``workers/cache/pair_check.json``.

Run: ``.venv/bin/python bench/train_pair_check.py`` (about a minute: one embedding pass).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from dataclasses import dataclass
from typing import Any

import bench_paths
import numpy as np
from semantic_quality import Pair, load_pairs
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from workers.cache.guards import mismatch
from workers.cache.pair_check import FEATURES, WEIGHTS_FILE, PairModel, features
from workers.providers.embedder import Embedder

DEV = bench_paths.BENCH_DIR / "data" / "semantic_eval" / "dev.jsonl"
OUT = bench_paths.ROOT / "workers" / "cache" / WEIGHTS_FILE
SEED = 17
LOWS = (0.60, 0.65, 0.70, 0.75, 0.80, 0.85)
HIGHS = (0.85, 0.88, 0.90, 0.92)
# the direction each feature may push towards "the same question"; 0: not used
SIGNS = {
    "cosine": 1,
    "alignment": 1,
    "alignment_gap": -1,
    "weakest": 1,
    "second_weakest": 1,
    "unmatched_0_6": -1,
    "unmatched_0_8": -1,
    "length_gap": -1,
}
PROBABILITIES = tuple(round(0.30 + 0.05 * step, 2) for step in range(14))


@dataclass(frozen=True)
class Featured:
    pairs: list[Pair]
    rows: np.ndarray  # FEATURES per pair
    should_hit: np.ndarray
    guarded: np.ndarray  # a guard vetoed the pair

    @property
    def cosine(self) -> np.ndarray:
        return self.rows[:, 0]


def featurise(pairs: list[Pair], embedder: Embedder) -> Featured:
    texts = list(dict.fromkeys([p.a for p in pairs] + [p.b for p in pairs]))
    sentence = dict(zip(texts, embedder.embed(texts), strict=True))
    tokens = dict(zip(texts, embedder.token_vectors(texts), strict=True))
    rows = np.array([features(tokens[p.a], tokens[p.b], float(sentence[p.a] @ sentence[p.b])) for p in pairs])
    return Featured(
        pairs=pairs,
        rows=rows,
        should_hit=np.array([p.should_hit for p in pairs]),
        guarded=np.array([mismatch(p.a, p.b) is not None for p in pairs]),
    )


def in_band(data: Featured, rows: np.ndarray, low: float, high: float) -> np.ndarray:
    """Which of ``rows`` the check would see: passed the guards, similarity in [low, high)."""
    cos = data.cosine[rows]
    return (cos >= low) & (cos < high) & ~data.guarded[rows]


def fit(rows: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """A logistic regression whose every coefficient has the sign :data:`SIGNS` expects.

    A feature that comes out with the other sign is dropped and the rest refitted. The set's
    near misses are written to share most words, so left free the model learns "words align
    well, so a different question", which would refuse the plain rewordings that are most of
    a cache's true hits; the signs keep it to what holds beyond this set.
    """
    mean, scale = rows.mean(axis=0), rows.std(axis=0) + 1e-9
    standard = (rows - mean) / scale
    kept = [i for i, name in enumerate(FEATURES) if SIGNS[name]]
    while True:
        model = LogisticRegression(C=1.0, max_iter=2000, random_state=SEED).fit(standard[:, kept], labels)
        wrong = [i for i, c in zip(kept, model.coef_[0], strict=True) if np.sign(c) != SIGNS[FEATURES[i]]]
        if not wrong:
            break
        kept = [i for i in kept if i not in wrong]
    coef = np.zeros(len(FEATURES))
    coef[kept] = model.coef_[0]
    return mean, scale, coef, float(model.intercept_[0])


def probabilities(data: Featured, train: np.ndarray, test: np.ndarray, low: float) -> np.ndarray:
    usable = train[in_band(data, train, min(LOWS), max(HIGHS))]
    mean, scale, coef, intercept = fit(data.rows[usable], data.should_hit[usable])
    z = ((data.rows[test] - mean) / scale) @ coef + intercept
    return 1.0 / (1.0 + np.exp(-z))


def score(data: Featured, accepted: np.ndarray) -> dict[str, float]:
    tp = int((accepted & data.should_hit).sum())
    fp = int((accepted & ~data.should_hit).sum())
    return {
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / int(data.should_hit.sum()),
        "false_hits": fp,
    }


def accepted_by(data: Featured, prob: np.ndarray, low: float, high: float, least: float) -> np.ndarray:
    cos = data.cosine
    return ~data.guarded & (cos >= low) & ((cos >= high) | (prob >= least))


def choose_cut(data: Featured, target: float) -> tuple[dict[str, Any], np.ndarray]:
    """The cut with the best cross-validated recall at ``target`` precision, and its probabilities."""
    prob = np.zeros(len(data.pairs))
    folds = StratifiedKFold(5, shuffle=True, random_state=SEED)
    for train, test in folds.split(data.rows, data.should_hit):
        prob[test] = probabilities(data, train, test, min(LOWS))
    cuts = []
    for low, high, least in itertools.product(LOWS, HIGHS, PROBABILITIES):
        figures = score(data, accepted_by(data, prob, low, high, least))
        cuts.append({"low": low, "high": high, "min_probability": least, **figures})
    good = [c for c in cuts if c["precision"] >= target]
    best = (
        max(good, key=lambda c: (c["recall"], -c["low"])) if good else max(cuts, key=lambda c: c["precision"])
    )
    return best, prob


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/train_pair_check.py", description=__doc__.split("\n")[0])
    parser.add_argument("--target-precision", type=float, default=0.99)
    parser.add_argument("--dry-run", action="store_true", help="print the cut, do not write the model")
    args = parser.parse_args(argv)
    data = featurise(load_pairs(DEV), Embedder())
    cut, _ = choose_cut(data, args.target_precision)
    usable = np.flatnonzero(in_band(data, np.arange(len(data.pairs)), cut["low"], cut["high"]))
    mean, scale, coef, intercept = fit(data.rows[usable], data.should_hit[usable])
    trained_on = {
        "data": "bench/data/semantic_eval/dev.jsonl",
        "pairs": len(data.pairs),
        "fitted_on": len(usable),
        "seed": SEED,
        "cv_precision": round(cut["precision"], 4),
        "cv_recall": round(cut["recall"], 4),
    }
    model = PairModel(
        mean, scale, coef, intercept, cut["min_probability"], cut["low"], cut["high"], trained_on
    )
    print(json.dumps({"cut": cut, "trained_on": trained_on}))
    if not args.dry_run:
        OUT.write_text(json.dumps(model.to_json(), indent=1) + "\n", encoding="utf-8")
        print(f"wrote {OUT.relative_to(bench_paths.ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
