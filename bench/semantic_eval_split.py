"""Split the semantic cache's evaluation set, once, into a development half and a test half.

The labelled pairs live in ``bench/data/semantic_eval/sources/*.jsonl``, one file per group of
sources (support and product questions; factual questions and instructions), written by hand
for this set and never used to write a guard. This script shuffles each stratum (source,
label, kind) with a fixed seed and deals it alternately into ``dev.jsonl`` and ``test.jsonl``,
so both halves hold the same mix.

Guards, thresholds and the second stage are tuned on ``dev.jsonl`` only; ``test.jsonl`` is
what ``make bench-cache`` reports, and is never edited after its results are seen. Running
this again writes the same two files (``--check`` says whether they are up to date).

Run: ``.venv/bin/python bench/semantic_eval_split.py [--check]``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import bench_paths

EVAL_DIR = bench_paths.BENCH_DIR / "data" / "semantic_eval"
SOURCES = EVAL_DIR / "sources"
DEV, TEST = EVAL_DIR / "dev.jsonl", EVAL_DIR / "test.jsonl"
SEED = 20261207


def load_sources(folder: Path = SOURCES) -> list[dict[str, Any]]:
    """Every pair of every source file, in file and line order; a repeated pair is an error."""
    pairs: list[dict[str, Any]] = []
    seen: set[frozenset[str]] = set()
    for path in sorted(folder.glob("*.jsonl")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            pair = json.loads(line)
            key = frozenset((pair["a"].strip().lower(), pair["b"].strip().lower()))
            if key in seen:
                raise ValueError(f"{path.name}:{number}: the pair is already in the set")
            seen.add(key)
            pairs.append(pair)
    return pairs


def split(pairs: list[dict[str, Any]], seed: int = SEED) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(dev, test)``: each stratum shuffled with ``seed`` and dealt alternately, dev first."""
    strata: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for pair in pairs:
        strata[(pair.get("source", ""), pair["label"], pair["kind"])].append(pair)
    rng = random.Random(seed)
    dev: list[dict[str, Any]] = []
    test: list[dict[str, Any]] = []
    for stratum in sorted(strata):
        members = strata[stratum]
        rng.shuffle(members)
        dev += members[0::2]
        test += members[1::2]
    return dev, test


def as_jsonl(pairs: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(pair, ensure_ascii=False) + "\n" for pair in pairs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/semantic_eval_split.py", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only say whether dev/test are up to date")
    args = parser.parse_args(argv)
    dev, test = split(load_sources())
    wanted = {DEV: as_jsonl(dev), TEST: as_jsonl(test)}
    if args.check:
        stale = [path.name for path, text in wanted.items() if not path.exists() or path.read_text() != text]
        print("stale: " + ", ".join(stale) if stale else "dev.jsonl and test.jsonl are up to date")
        return 1 if stale else 0
    for path, text in wanted.items():
        path.write_text(text, encoding="utf-8")
    print(f"{len(dev) + len(test)} pairs: dev {len(dev)}, test {len(test)} (seed {SEED})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
