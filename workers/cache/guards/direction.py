"""The direction guard: "increase my limit" is not "decrease my limit", nor "A > B" "B > A".

Words with a pole on an axis (increase / decrease, before / after, import / export, upload
/ download, buy / sell, enable / disable, "turn on" / "turn off", minimum / maximum, oldest
/ newest, ...; see ``[direction]`` in lexicon.toml). For each axis both texts use, the poles
must agree; and per (axis, the content word the pole word moves: the nearest one before it
in its clause), so "bond prices fall when rates rise" differs from "bond prices rise when
rates fall". Comparisons with operands (relations.py) decide first: operands on opposite
sides of one axis ("A bigger than B" / "B bigger than A") differ, and operands on the same
sides excuse opposite pole words ("A bigger than B" / "B smaller than A").
"""

from __future__ import annotations

from workers.cache.guards.lexicon import PHRASES, POLES, STOPWORDS
from workers.cache.guards.relations import contradicted, relations
from workers.cache.guards.roles import compares
from workers.cache.guards.tokens import Token, clause, tokenize

Tokens = tuple[Token, ...]


def _pole_words(tokens: Tokens) -> list[tuple[int, str, int]]:
    """``(index, axis, pole)`` for each pole word or phrase ("turn off") of ``tokens``."""
    lowers = [t.lower for t in tokens]
    found = []
    for i, word in enumerate(lowers):
        phrase = PHRASES.get((word, lowers[i + 1])) if i + 1 < len(lowers) else None
        found += [(i, axis, pole) for axis, pole in ((phrase,) if phrase else POLES.get(word, ()))]
    return found


def poles(text: str) -> dict[str, frozenset[int]]:
    """For each axis ``text`` uses, the poles it takes: +1 (increase, after...) and/or -1."""
    found: dict[str, set[int]] = {}
    for _, axis, pole in _pole_words(tokenize(text)):
        found.setdefault(axis, set()).add(pole)
    return {axis: frozenset(values) for axis, values in found.items()}


def _anchor(tokens: Tokens, i: int) -> str | None:
    """What the pole word at ``i`` moves: the nearest content word before it in its clause, else after."""
    start, stop = clause(tokens, i)
    for j in [*range(i - 1, start - 1, -1), *range(i + 1, stop)]:
        word = tokens[j].lower
        if tokens[j].kind != "punct" and word not in STOPWORDS and word not in POLES:
            return word
    return None


def anchored_poles(text: str) -> dict[tuple[str, str], frozenset[int]]:
    """The poles per ``(axis, anchor)``: "bond prices fall when rates rise" has prices -1, rates +1."""
    tokens = tokenize(text)
    found: dict[tuple[str, str], set[int]] = {}
    for i, axis, pole in _pole_words(tokens):
        anchor = _anchor(tokens, i)
        if anchor is not None:
            found.setdefault((axis, anchor), set()).add(pole)
    return {key: frozenset(values) for key, values in found.items()}


def direction_mismatch(a: str, b: str) -> bool:
    """Whether the texts point opposite ways on an axis both use."""
    relations_a, relations_b = relations(a), relations(b)
    if contradicted(relations_a, relations_b) or contradicted(relations_b, relations_a):
        return True
    # "A bigger than B" / "B smaller than A": opposite words, the same comparison
    agreed = {ra.axis for ra in relations_a for rb in relations_b if ra.agrees(rb)}
    poles_a, poles_b = poles(a), poles(b)
    if any(
        axis in poles_b and poles_b[axis] != values for axis, values in poles_a.items() if axis not in agreed
    ):
        return True
    # both poles in both texts, on different things: "prices fall when rates rise" / the other way;
    # not when a text sets them side by side ("the difference between debit and credit cards")
    if compares(a) or compares(b):
        return False
    anchored_a, anchored_b = anchored_poles(a), anchored_poles(b)
    return any(
        key in anchored_b and anchored_b[key] != values
        for key, values in anchored_a.items()
        if key[0] not in agreed
    )
