"""The substitution guard: "reverse a list in Python" is not "sort a list in Python".

The same words in the same order but one content word swapped ("on windows" / "on linux"):
the same template with another slot filled is another question. Swapped stopwords ("How do
I" / "How can I") and two forms or spellings of one word ("colour" / "color") do not count.
"""

from __future__ import annotations

from workers.cache.guards.lexicon import STOPWORDS
from workers.cache.guards.tokens import tokenize


def _variants(a: str, b: str) -> bool:
    """Two spellings or forms of one word: "colour" / "color", "sort" / "sorting"."""
    common = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        common += 1
    return common >= 5 or common >= min(len(a), len(b)) - 1


def substitution(a: str, b: str) -> tuple[str, str] | None:
    """The one content word swapped in an otherwise identical question, or None.

    Texts of fewer than 4 words are never read as a template.
    """
    words_a = [t.lower for t in tokenize(a) if t.kind != "punct"]
    words_b = [t.lower for t in tokenize(b) if t.kind != "punct"]
    if len(words_a) != len(words_b) or len(words_a) < 4:
        return None
    swapped = [(x, y) for x, y in zip(words_a, words_b, strict=True) if x != y]
    if len(swapped) != 1:
        return None
    x, y = swapped[0]
    if x in STOPWORDS or y in STOPWORDS or _variants(x, y):
        return None
    return x, y


def substitution_mismatch(a: str, b: str) -> bool:
    """Whether one content word is swapped in an otherwise identical question."""
    return substitution(a, b) is not None
