"""The question guard: "Who wrote X?" is not "When was X written?".

The kind of answer a clause-opening interrogative asks for: person (who), time (when, what
year), place (where), reason (why, how come), quantity (how much, how many), duration (how
long) or measure (how far, how old, what temperature). Two texts that both ask for a kind,
and for no kind in common, differ; a bare what, which or how asks for none.
"""

from __future__ import annotations

from workers.cache.guards.lexicon import HOW, LEADING, WH, WHAT_NOUNS
from workers.cache.guards.tokens import CLAUSE_BREAKS, tokenize


def question_types(text: str) -> frozenset[str]:
    """The kinds of answer ``text``'s clauses ask for: person, time, place, reason, quantity, ...

    Only an interrogative that opens a clause counts (after a leading preposition: "At what
    temperature"); a bare "what", "which" or "how" names no kind.
    """
    tokens = tokenize(text)
    found: set[str] = set()
    for i in range(len(tokens)):
        if i > 0 and tokens[i - 1].text not in CLAUSE_BREAKS:
            continue
        j = i
        while j < len(tokens) and tokens[j].lower in LEADING:
            j += 1
        word = tokens[j].lower if j < len(tokens) else ""
        following = tokens[j + 1].lower if j + 1 < len(tokens) else ""
        if word in WH:
            found.add(WH[word])
        elif word == "how" and following in HOW:
            found.add(HOW[following])
        elif word in {"what", "which"} and following in WHAT_NOUNS:
            found.add(WHAT_NOUNS[following])
    return frozenset(found)


def question_mismatch(a: str, b: str) -> bool:
    """Whether both texts ask for a kind of answer and no kind is common: "Who wrote X" / "When"."""
    types_a, types_b = question_types(a), question_types(b)
    return bool(types_a) and bool(types_b) and not types_a & types_b
