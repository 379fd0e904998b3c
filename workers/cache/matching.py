"""The semantic cache's decision: close enough, and no guard says the questions differ.

The default threshold was chosen with ``bench/semantic_quality.py`` on
``bench/data/semantic_pairs.jsonl``: the lowest cosine similarity at which guarded matching
keeps precision at 0.98 or more (see that script for the figures).
"""

from __future__ import annotations

from workers.cache.guards import mismatch

DEFAULT_THRESHOLD = 0.80


class SemanticMatcher:
    """Accepts a cached question for a query when similar enough and not vetoed by a guard."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], not {threshold}")
        self.threshold = threshold

    def accept(self, query_text: str, cached_text: str, similarity: float) -> tuple[bool, str | None]:
        """``(True, None)`` on a match; ``(False, reason)`` otherwise.

        The reason is "below_threshold" when the similarity is too low, else the guard's
        reason ("negation", "date", "number", "entity" or "direction").
        """
        if similarity < self.threshold:
            return False, "below_threshold"
        reason = mismatch(query_text, cached_text)
        return (False, reason) if reason else (True, None)
