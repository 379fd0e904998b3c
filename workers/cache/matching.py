"""The semantic cache's decision: close enough, and no guard says the questions differ.

The default threshold comes from ``bench/semantic_quality.py`` on the 440 labelled pairs of
``bench/data/semantic_pairs.jsonl``. Its sweep's pick, the lowest threshold with precision of
at least 0.98, is 0.79 (precision 0.984, recall 0.941); the three false hits it keeps are
near-topic questions at similarities 0.826 to 0.845 that no guard can see ("How do I tie a
tie?" / "How do I tie a bow tie?"). The default sits above them at 0.85, the lowest
threshold with no false hit on the set (precision 1.0, recall 0.876): recall is cheaper to
lose than a wrong answer is to serve.
"""

from __future__ import annotations

from workers.cache.guards import mismatch

DEFAULT_THRESHOLD = 0.85


class SemanticMatcher:
    """Accepts a cached question for a query when similar enough and not vetoed by a guard."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], not {threshold}")
        self.threshold = threshold

    def accept(
        self, query_text: str, cached_text: str, similarity: float, threshold: float | None = None
    ) -> tuple[bool, str | None]:
        """``(True, None)`` on a match; ``(False, reason)`` otherwise.

        ``threshold`` overrides the matcher's own (a namespace whose threshold was raised).
        The reason is "below_threshold" when the similarity is too low, else the reason of
        the first guard that rejects the pair (see ``GUARDS`` in workers/cache/guards/).
        """
        if similarity < (self.threshold if threshold is None else threshold):
            return False, "below_threshold"
        reason = mismatch(query_text, cached_text)
        return (False, reason) if reason else (True, None)
