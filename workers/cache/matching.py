"""The semantic cache's decision: close enough, no guard says the questions differ, and the
second stage, where it runs, finds them the same question.

Three steps, cheapest first:

1. **Threshold.** The cosine similarity of the two questions' MiniLM vectors must reach the
   threshold (the namespace's own, when shadow verification raised it).
2. **Guards** (workers/cache/guards/): rules that veto pairs that differ in a negation, a
   figure, a date, a name, a direction, a role or a unit, whatever their similarity.
3. **Second stage** (``pair_check.py``): for similarities in the model's band, the questions
   compared token by token; a pair the model finds unlikely to be the same question is
   refused.

The thresholds come from the precision and recall curve of the evaluation set's development
half (``bench/semantic_quality.py``; the curve and the test half's figures are in
docs/caching.md). A refused pair costs a cache hit; a wrong hit serves another question's
answer, so the curve's pick favours precision.
"""

from __future__ import annotations

from typing import Protocol

from workers.cache.guards import mismatch

DEFAULT_THRESHOLD = 0.70


class SecondStage(Protocol):
    def same_question(self, query: str, cached: str, similarity: float) -> bool: ...


class SemanticMatcher:
    """Accepts a cached question for a query when similar enough and not refused by a check."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, second_stage: SecondStage | None = None) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], not {threshold}")
        self.threshold = threshold
        self.second_stage = second_stage

    def accept(
        self, query_text: str, cached_text: str, similarity: float, threshold: float | None = None
    ) -> tuple[bool, str | None]:
        """``(True, None)`` on a match; ``(False, reason)`` otherwise.

        ``threshold`` overrides the matcher's own (a namespace whose threshold was raised).
        The reason is "below_threshold" when the similarity is too low, the reason of the
        first guard that rejects the pair (see ``GUARDS`` in workers/cache/guards/), or
        "second_stage".
        """
        if similarity < (self.threshold if threshold is None else threshold):
            return False, "below_threshold"
        reason = mismatch(query_text, cached_text)
        if reason:
            return False, reason
        if self.second_stage and not self.second_stage.same_question(query_text, cached_text, similarity):
            return False, "second_stage"
        return True, None
