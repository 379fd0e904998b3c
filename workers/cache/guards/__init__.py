"""Guards for the semantic cache: reasons two close texts must not count as the same question.

Sentence embeddings put "Is X safe?" and "Is X not safe?" next to each other, and so "top 5"
and "top 10", "in 2019" and "in 2020", "capital of France" and "capital of Spain", "Is A
bigger than B" and "Is B bigger than A", "5 km in miles" and "5 miles in km", "Did Alice
pay Bob?" and "Did Bob pay Alice?". A cached answer to one is a wrong answer to the
other. :func:`mismatch` vetoes such pairs whatever their cosine similarity; it never says two
texts are the same, only that they are not, so it can only lower the cache's hit rate.

The rule: the guards of :data:`GUARDS` run in order, and the first that finds the texts
different names the mismatch. Each guard is symmetric, so the check is. Paraphrases that
keep the same negation, figures, dates, names and direction pass ("How do I reset my
password?" / "What's the way to reset my password?"); a paraphrase that swaps "won't" for
"fails to", a name for a description or one noun for its synonym in the same frame
("package" / "parcel") is rejected, which costs a cache hit, never a wrong answer. Known
gaps: names written in lowercase are not seen as names unless the texts differ by that one
word; two different questions that share their figures, names and direction but are worded
differently ("How do I center a div?" / "How do I center text?") are left to the
similarity threshold.

What must not count as a difference: an abbreviation and its spelled-out form ("2FA" /
"two-factor authentication", read as one by ``abbreviations.py`` before tokenizing), number
words and digits ("a dozen" / "12", "one file into another" / "two files"), one unit however
written ("5 km" / "5 kilometres"), the passive of the same roles ("Bob was paid by Alice")
and symmetric words ("Alice married Bob" / "Bob married Alice").

Layout. ``tokens.py`` splits a text into tokens, the one input of every guard.
``lexicon.toml`` holds the word lists and ``lexicon.py`` reads them. A guard is a module
whose ``*_mismatch(a, b)`` says whether the two texts differ in one feature; extractors that
read a feature for a guard sit beside it (``dates.py`` and ``numbers.py`` for
``figures.py``; ``relations.py`` for ``direction.py`` and ``roles.py``, which read their
operands one way). To add a guard, write its module (with a test in
tests/workers/test_semantic_guards.py or a test_semantic_guard_*.py beside it) and add one
line to :data:`GUARDS`, where its place in the order decides which reason a pair that
several guards reject gets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from workers.cache.guards.direction import direction_mismatch
from workers.cache.guards.entities import entity_mismatch
from workers.cache.guards.figures import date_mismatch, number_mismatch
from workers.cache.guards.negation import negation_mismatch
from workers.cache.guards.questions import question_mismatch
from workers.cache.guards.roles import role_mismatch
from workers.cache.guards.substitution import substitution_mismatch
from workers.cache.guards.units import unit_mismatch


class Guard(NamedTuple):
    """One check: the reason it gives, and whether two texts differ in its feature."""

    reason: str
    differ: Callable[[str, str], bool]


GUARDS: tuple[Guard, ...] = (
    Guard("negation", negation_mismatch),
    Guard("date", date_mismatch),
    Guard("number", number_mismatch),
    Guard("entity", entity_mismatch),
    Guard("direction", direction_mismatch),
    Guard("unit", unit_mismatch),
    Guard("role", role_mismatch),
    Guard("question", question_mismatch),
    Guard("substitution", substitution_mismatch),
)


def mismatch(query: str, cached: str) -> str | None:
    """Why ``query`` and ``cached`` are different questions (a guard's reason), or None."""
    for guard in GUARDS:
        if guard.differ(query, cached):
            return guard.reason
    return None
