"""How often the semantic cache would serve a wrong answer, and how often a right one.

``bench/data/semantic_pairs.jsonl`` holds hand-written question pairs: paraphrases that must
hit (label "hit") and hard negatives that must miss (label "miss": negation, number, date,
entity, direction, and "topic" for a near-topic but different question). Each distinct text
is embedded once with all-MiniLM-L6-v2; a pair's similarity is the cosine of its two texts.

Guarded matching (:class:`workers.cache.matching.SemanticMatcher`: similarity at or above the
threshold and no guard mismatch) is swept over thresholds 0.70 to 0.95. The chosen threshold
is the one with the best recall among those with precision of at least 0.98, the lowest on a
tie. Plain cosine at 0.80 and 0.90, with no guards, is printed as the baseline. A false hit is
a "miss" pair accepted: the cache would have served the other question's answer.

Run: ``.venv/bin/python bench/semantic_quality.py``. :func:`evaluate` is importable (with
``bench/`` on ``sys.path``: ``from semantic_quality import evaluate``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import bench_paths
import numpy as np
from rich.console import Console
from rich.table import Table

os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from workers.cache.matching import DEFAULT_THRESHOLD, SecondStage, SemanticMatcher
from workers.cache.pair_check import PairCheck
from workers.providers.embedder import Embedder

EVAL_DIR = bench_paths.BENCH_DIR / "data" / "semantic_eval"
DATA = EVAL_DIR / "dev.jsonl"
TARGET_PRECISION = 0.99
TARGET_RECALL = 0.80
THRESHOLDS = tuple(round(0.60 + 0.01 * step, 2) for step in range(36))
BASELINES = (0.80, 0.90)

console = Console(width=None if sys.stdout.isatty() else 130)


@dataclass(frozen=True)
class Pair:
    """Two texts, whether they must share a cached answer, and what kind of pair they are."""

    a: str
    b: str
    label: str  # "hit" or "miss"
    kind: str

    @property
    def should_hit(self) -> bool:
        return self.label == "hit"


def as_pair(item: Pair | Mapping[str, Any]) -> Pair:
    """A :class:`Pair` from a pair or a JSONL row."""
    if isinstance(item, Pair):
        return item
    if item["label"] not in {"hit", "miss"}:
        raise ValueError(f"label must be 'hit' or 'miss', not {item['label']!r}")
    return Pair(str(item["a"]), str(item["b"]), str(item["label"]), str(item["kind"]))


def load_pairs(path: Path = DATA) -> list[Pair]:
    """The labelled pairs of a JSONL file."""
    with path.open(encoding="utf-8") as lines:
        return [as_pair(json.loads(line)) for line in lines if line.strip()]


class TextEmbedder(Protocol):
    def embed(self, texts: list[str]) -> np.ndarray: ...


class CachedEmbedder:
    """Embeds each distinct text once, however many times :func:`evaluate` asks."""

    def __init__(self, embedder: TextEmbedder) -> None:
        self.embedder = embedder
        self.vectors: dict[str, np.ndarray] = {}

    def embed(self, texts: list[str]) -> np.ndarray:
        missing = [text for text in dict.fromkeys(texts) if text not in self.vectors]
        if missing:
            self.vectors.update(zip(missing, self.embedder.embed(missing), strict=True))
        return np.stack([self.vectors[text] for text in texts]) if texts else np.zeros((0, 0), np.float32)


def similarities(pairs: Sequence[Pair], embedder: TextEmbedder) -> np.ndarray:
    """Each pair's cosine similarity (the embedder's rows are L2-normalised)."""
    texts = list(dict.fromkeys([pair.a for pair in pairs] + [pair.b for pair in pairs]))
    vectors = dict(zip(texts, embedder.embed(texts), strict=True))
    return np.array([float(np.dot(vectors[pair.a], vectors[pair.b])) for pair in pairs])


def ratio(numerator: int, denominator: int) -> float:
    """``numerator / denominator``; 1.0 when nothing was counted (no hit served, none wrong)."""
    return numerator / denominator if denominator else 1.0


def evaluate(
    pairs: Iterable[Pair | Mapping[str, Any]],
    embedder: TextEmbedder,
    threshold: float,
    guarded: bool,
    second_stage: SecondStage | None = None,
) -> dict[str, Any]:
    """Precision and recall of matching ``pairs`` at ``threshold``, with or without the guards.

    Returns threshold, guarded, precision, recall, tp, fp, fn, tn, false_hits_by_kind (miss
    pairs accepted, per kind), false_hits (those pairs with their similarity),
    vetoed_hits_by_reason (paraphrases above the threshold that a guard rejected) and
    rejections_by_reason (every guard veto above the threshold).
    """
    items = [as_pair(item) for item in pairs]
    scores = similarities(items, embedder)
    matcher = SemanticMatcher(threshold, second_stage)
    decisions = [
        matcher.accept(pair.a, pair.b, float(score)) if guarded else (bool(score >= threshold), None)
        for pair, score in zip(items, scores, strict=True)
    ]
    checked = guarded and second_stage is not None
    counts = tally(items, scores, decisions)
    return {"threshold": threshold, "guarded": guarded, "second_stage": checked, **counts}


def tally(
    items: Sequence[Pair], scores: np.ndarray, decisions: Sequence[tuple[bool, str | None]]
) -> dict[str, Any]:
    """Counts, precision and recall of ``decisions`` (accepted, reason) against the pairs' labels."""
    tp = fp = fn = tn = 0
    false_hits: list[dict[str, Any]] = []
    vetoed_hits: Counter[str] = Counter()
    rejections: Counter[str] = Counter()
    for pair, score, (accepted, reason) in zip(items, scores, decisions, strict=True):
        if reason and reason != "below_threshold":
            rejections[reason] += 1
            if pair.should_hit:
                vetoed_hits[reason] += 1
        if pair.should_hit:
            tp, fn = (tp + 1, fn) if accepted else (tp, fn + 1)
        elif accepted:
            fp += 1
            false_hits.append({"a": pair.a, "b": pair.b, "kind": pair.kind, "similarity": float(score)})
        else:
            tn += 1
    return {
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "false_hits_by_kind": dict(Counter(hit["kind"] for hit in false_hits)),
        "false_hits": false_hits,
        "vetoed_hits_by_reason": dict(vetoed_hits),
        "rejections_by_reason": dict(rejections),
    }


def choose(
    results: Sequence[dict[str, Any]], target_precision: float = TARGET_PRECISION
) -> dict[str, Any] | None:
    """The result with the best recall among those with precision >= target; lowest threshold on a tie."""
    qualifying = [r for r in results if r["precision"] >= target_precision]
    if not qualifying:
        return None
    return min(qualifying, key=lambda r: (-r["recall"], r["threshold"]))


def embed_latency(embedder: Embedder, runs: int = 30) -> tuple[float, float]:
    """Median seconds to embed 1 text, and per text in a batch of 64 (model already loaded)."""
    texts = [f"How do I reset the password of account number {i}?" for i in range(64)]
    embedder.embed(texts[:1])
    single = []
    for i in range(runs):
        started = time.perf_counter()
        embedder.embed([texts[i % 64]])
        single.append(time.perf_counter() - started)
    batch = []
    for _ in range(max(3, runs // 5)):
        started = time.perf_counter()
        embedder.embed(texts)
        batch.append((time.perf_counter() - started) / len(texts))
    return statistics.median(single), statistics.median(batch)


def kinds_cell(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{kind} {counts[kind]}" for kind in sorted(counts) if counts[kind]) or "-"


def checks_cell(result: Mapping[str, Any]) -> str:
    if not result["guarded"]:
        return "cosine"
    return "guards + 2nd stage" if result.get("second_stage") else "guards"


def results_table(title: str, results: Sequence[dict[str, Any]], chosen: dict[str, Any] | None) -> Table:
    table = Table(title=title)
    for column in ("threshold", "checks", "precision", "recall", "tp", "fp", "fn", "tn"):
        table.add_column(column, justify="right")
    table.add_column("false hits by kind")
    for r in results:
        mark = "bold green" if r is chosen else None
        table.add_row(
            f"{r['threshold']:.2f}",
            checks_cell(r),
            f"{r['precision']:.3f}",
            f"{r['recall']:.3f}",
            *(str(r[key]) for key in ("tp", "fp", "fn", "tn")),
            kinds_cell(r["false_hits_by_kind"]),
            style=mark,
        )
    return table


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/semantic_quality.py", description="Semantic cache matching quality on labelled pairs."
    )
    parser.add_argument(
        "--data", type=Path, default=DATA, help="JSONL of labelled pairs (default: the development half)"
    )
    parser.add_argument("--latency-runs", type=int, default=30, help="runs for the embedding latency")
    return parser.parse_args(argv)


def curve(pairs: Sequence[Pair], model: Embedder, source: str) -> dict[str, Any]:
    """The sweep of the full matcher (guards and second stage), its pick, and the baselines."""
    embedder = embed_pairs(pairs, model, source)
    check = PairCheck(model, remembered=2 * len(pairs))  # every text encoded once for the sweep
    sweep = [evaluate(pairs, embedder, t, guarded=True, second_stage=check) for t in THRESHOLDS]
    guards_only = [evaluate(pairs, embedder, t, guarded=True) for t in THRESHOLDS]
    baselines = [evaluate(pairs, embedder, t, guarded=False) for t in BASELINES]
    default = evaluate(pairs, embedder, DEFAULT_THRESHOLD, guarded=True, second_stage=check)
    return {
        "sweep": sweep,
        "guards_only": guards_only,
        "baselines": baselines,
        "chosen": choose(sweep) or max(sweep, key=lambda r: (r["precision"], r["recall"])),
        "default": default,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pairs = load_pairs(args.data)
    model = Embedder()
    found = curve(pairs, model, args.data.name)
    chosen, default = found["chosen"], found["default"]
    console.print(results_table("Full matcher (similarity, guards, second stage)", found["sweep"], chosen))
    console.print(
        results_table(
            "Baselines: plain cosine, and the guards without the second stage",
            [*found["baselines"], *(r for r in found["guards_only"] if r["threshold"] in BASELINES)],
            None,
        )
    )
    describe("sweep's pick", chosen)
    describe("configured default (workers.cache.matching.DEFAULT_THRESHOLD)", default)

    single, per_text = embed_latency(model, args.latency_runs)
    console.print(
        f"embed latency: 1 text {single * 1000:.1f} ms; batch of 64 {per_text * 1000:.2f} ms per text"
    )
    met = default["precision"] >= TARGET_PRECISION and default["recall"] >= TARGET_RECALL
    figures = summary(chosen, default, found["baselines"]) | {
        "embed_1_ms": f"{single * 1000:.2f}",
        "embed_64_per_text_ms": f"{per_text * 1000:.3f}",
        "targets_met": str(met),
    }
    console.print(" ".join(f"{name}={value}" for name, value in figures.items()), soft_wrap=True)
    return 0


def embed_pairs(pairs: Sequence[Pair], model: Embedder, source: str) -> CachedEmbedder:
    """Describe the pairs, then embed every distinct text once."""
    counts = Counter(pair.kind for pair in pairs)
    hits = sum(pair.should_hit for pair in pairs)
    console.print(
        f"{len(pairs)} pairs from {source}: {hits} hits ({hits / len(pairs):.0%}), "
        + ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items()))
    )
    embedder = CachedEmbedder(model)
    started = time.perf_counter()
    embedder.embed([pair.a for pair in pairs] + [pair.b for pair in pairs])
    console.print(f"embedded {len(embedder.vectors)} distinct texts in {time.perf_counter() - started:.1f}s")
    return embedder


def summary(
    chosen: dict[str, Any], default: dict[str, Any], baselines: Sequence[dict[str, Any]]
) -> dict[str, str]:
    """The quality figures of the closing ``name=value`` line."""
    return {
        "sweep_threshold": f"{chosen['threshold']:.2f}",
        "sweep_precision": f"{chosen['precision']:.4f}",
        "sweep_recall": f"{chosen['recall']:.4f}",
        "default_threshold": f"{default['threshold']:.2f}",
        "default_precision": f"{default['precision']:.4f}",
        "default_recall": f"{default['recall']:.4f}",
        **{f"cosine{r['threshold']:.2f}_precision": f"{r['precision']:.4f}" for r in baselines},
        **{f"cosine{r['threshold']:.2f}_recall": f"{r['recall']:.4f}" for r in baselines},
    }


def describe(name: str, result: dict[str, Any]) -> None:
    """One line of figures for ``result``, then its false hits."""
    vetoed = dict(sorted(result["vetoed_hits_by_reason"].items())) or "-"
    console.print(
        f"{name}: threshold {result['threshold']:.2f}, precision {result['precision']:.3f}, "
        f"recall {result['recall']:.3f}; false hits by kind: {kinds_cell(result['false_hits_by_kind'])}; "
        f"paraphrases vetoed by a guard: {vetoed}"
    )
    for hit in result["false_hits"]:
        console.print(f"  false hit ({hit['kind']}, {hit['similarity']:.3f}): {hit['a']!r} / {hit['b']!r}")


if __name__ == "__main__":
    sys.exit(main())
