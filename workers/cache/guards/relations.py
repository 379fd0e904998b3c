"""Ordered comparisons in a text, for the direction guard: who is bigger than whom.

A comparison with operands ("X bigger than Y", "X cheaper in A than in B", "A before B",
"from X to Y", "convert X to Y", "X to Y" between names or among keywords) is read as a :class:`Relation`
(axis, left words, right words), turned round when the pole is negative: "Y smaller than X"
reads as "X bigger than Y". So two texts can be told to compare the same things the same
way however they word it, or the other way round. The role guard (roles.py) reads who does
what to whom as relations too, with the same operands (:func:`operand`) and the same rule
for when two texts' relations contradict (:func:`contradicted`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from workers.cache.guards.lexicon import BEFORE_AFTER, COMPARING, POLES, PRONOUNS, ROUTE_CUES, STOPWORDS
from workers.cache.guards.tokens import Token, clause, is_inner_capital, tokenize

Tokens = tuple[Token, ...]
_RELATION_WORDS = frozenset({"than", "prior", "from", "to", "into"} | set(BEFORE_AFTER))


@dataclass(frozen=True)
class Relation:
    """An ordered comparison: ``left`` is further along ``axis`` than ``right`` (or goes to it)."""

    axis: str
    left: frozenset[str]
    right: frozenset[str]

    def opposes(self, other: Relation) -> bool:
        """Same axis, operands on opposite sides: "A bigger than B" / "B bigger than A"."""
        return self.axis == other.axis and bool(self.left & other.right) and bool(self.right & other.left)

    def agrees(self, other: Relation) -> bool:
        """Same axis, operands on the same sides: "A bigger than B" / "B smaller than A"."""
        return self.axis == other.axis and bool(self.left & other.left) and bool(self.right & other.right)


def contradicted(mine: list[Relation], theirs: list[Relation]) -> bool:
    """Whether one of ``mine`` is opposed by one of ``theirs`` and agreed by none of them."""
    by_axis: dict[str, list[Relation]] = {}
    for t in theirs:
        by_axis.setdefault(t.axis, []).append(t)
    for r in mine:
        same_axis = by_axis.get(r.axis, [])
        if any(r.opposes(t) for t in same_axis) and not any(r.agrees(t) for t in same_axis):
            return True
    return False


_LETTERS: dict[int, tuple[Tokens, frozenset[int]]] = {}  # by the identity of tokenize's cached tuple


def letter_names(tokens: Tokens) -> frozenset[int]:
    """Where a single letter names a thing: "list a contains list b" (one noun, two letters).

    Kept per token tuple by identity: hashing the tuple would cost its length on every call.
    """
    cached = _LETTERS.get(id(tokens))
    if cached is not None and cached[0] is tokens:
        return cached[1]
    after: dict[str, set[str]] = {}
    for before, token in itertools.pairwise(tokens):
        if len(token.text) == 1 and token.text.isalpha() and before.lower not in STOPWORDS:
            after.setdefault(before.lower, set()).add(token.lower)
    nouns = {noun for noun, letters in after.items() if len(letters) >= 2}
    found = frozenset(
        i for i in range(1, len(tokens)) if len(tokens[i].text) == 1 and tokens[i - 1].lower in nouns
    )
    if len(_LETTERS) > 4096:
        _LETTERS.clear()
    _LETTERS[id(tokens)] = (tokens, found)
    return found


def operand(tokens: Tokens, i: int) -> str | None:
    """The operand ``tokens[i]`` names, or None for a stopword or punctuation.

    A capital letter ("A") and a letter that names a thing ("list a") are names; a personal
    pronoun is one operand in either case: "him" and "he" read as "?he".
    """
    token = tokens[i]
    if token.kind == "punct":
        return None
    if token.lower in PRONOUNS:
        return "?" + PRONOUNS[token.lower]
    if (
        token.lower not in STOPWORDS
        or (len(token.text) == 1 and token.text.isupper())
        or i in letter_names(tokens)
    ):
        return token.lower
    return None


def content(tokens: Tokens, start: int, stop: int) -> frozenset[str]:
    """The operands of ``tokens[start:stop]`` (see :func:`operand`)."""
    found = (operand(tokens, i) for i in range(max(start, 0), min(stop, len(tokens))))
    return frozenset(word for word in found if word is not None)


def nearest(tokens: Tokens, start: int, stop: int, backwards: bool) -> frozenset[str]:
    """The operand of ``tokens[start:stop]`` nearest its end (``backwards``) or start: a name of
    up to two words ("flights New York" ends in "new york"), else one word ("email candidate")."""
    indices = range(min(stop, len(tokens)) - 1, max(start, 0) - 1, -1) if backwards else range(start, stop)
    found: list[str] = []
    for i in indices:
        word = operand(tokens, i)
        if word is None:
            continue
        if found and not (_name_like(tokens[i]) and len(found) < 2):
            break
        found.append(word)
        if not _name_like(tokens[i]):
            break
    return frozenset(found)


def ordered(axis: str, pole: int, left: frozenset[str], right: frozenset[str]) -> list[Relation]:
    """The relation, left more than right on ``axis`` (swapped when ``pole`` is negative).

    A word on both sides ("a cold from being cold") tells neither side apart and is dropped.
    """
    left, right = left - right, right - left
    if not left or not right:
        return []
    return [Relation(axis, left, right) if pole > 0 else Relation(axis, right, left)]


def _name_like(token: Token) -> bool:
    return token.kind == "num" or token.text[:1].isupper() or is_inner_capital(token.text)


def _comparative(lowers: list[str], i: int, start: int) -> int | None:
    """Where the comparative of the "than" at ``i`` is: just before it, or a known one up to 4 before."""
    if i - 1 < start or lowers[i - 1] in {"other", "rather"}:
        return None
    for k in range(i - 1, max(start, i - 5) - 1, -1):
        if lowers[k] in COMPARING or lowers[k] in POLES:
            return k
    return i - 1


def _comparisons(tokens: Tokens, i: int, start: int, stop: int) -> list[Relation]:
    """The comparison at the "than" at ``i``: "X bigger than Y", "X more expensive than Y"."""
    lowers = [t.lower for t in tokens]
    k = _comparative(lowers, i, start)
    if k is None:
        return []
    axes: tuple[tuple[str, int], ...]
    if lowers[k] in COMPARING:  # "more than"
        first, axes = k, (("magnitude", COMPARING[lowers[k]]),)
    elif k - 1 >= start and lowers[k - 1] in COMPARING:  # "more expensive than"
        sign = COMPARING[lowers[k - 1]]
        first = k - 1
        axes = tuple((axis, pole * sign) for axis, pole in POLES.get(lowers[k], ((lowers[k], 1),)))
    else:  # "bigger than", "smarter than"
        first, axes = k, POLES.get(lowers[k], ((lowers[k], 1),))
    # the left operand: the clause before "than" but the comparative ("houses cheaper in Texas than")
    left = content(tokens, start, first) | content(tokens, k + 1, i)
    right = content(tokens, i + 1, stop)
    return [relation for axis, pole in axes for relation in ordered(axis, pole, left, right)]


def _route(tokens: Tokens, i: int, start: int, stop: int) -> list[Relation]:
    """The route at the "from" or "to" at ``i``: "from X to Y", "to Y from X", "convert X to Y"."""
    lowers = [t.lower for t in tokens]
    targets = [j for j in range(start, stop) if lowers[j] in {"to", "into"}]
    if lowers[i] == "from":
        after = [j for j in targets if j > i]
        if after:  # from X to Y
            source, target = content(tokens, i + 1, after[0]), content(tokens, after[0] + 1, stop)
            return ordered("route", 1, source, target)
        if targets:  # to Y from X
            return ordered("route", 1, content(tokens, i + 1, stop), content(tokens, targets[-1] + 1, i))
        return ordered("route", 1, content(tokens, i + 1, stop), content(tokens, start, i))
    if "from" in lowers[start:stop] or i == start or i + 1 >= stop:
        return []  # read at the "from"
    cue = any(word in ROUTE_CUES for word in lowers[start:stop])
    terse = all(word not in STOPWORDS or word in _RELATION_WORDS for word in lowers[start:stop])
    if cue or terse or (_name_like(tokens[i - 1]) and _name_like(tokens[i + 1])):
        # the words next to "to": "flights London to New York duration" goes London -> New York
        return ordered("route", 1, nearest(tokens, start, i, True), nearest(tokens, i + 1, stop, False))
    return []


def _before_after(tokens: Tokens, i: int, start: int, stop: int) -> list[Relation]:
    """The order in time at the "before", "after" or "prior to" at ``i``: "A before B"."""
    word = tokens[i].lower
    right = content(tokens, i + 2 if word == "prior" else i + 1, stop)
    return ordered("time", BEFORE_AFTER.get(word, -1), content(tokens, start, i), right)


def relations(text: str) -> list[Relation]:
    """The ordered comparisons of ``text``: comparatives with "than", before/after, routes."""
    tokens = tokenize(text)
    found: list[Relation] = []
    for i, token in enumerate(tokens):
        word = token.lower
        if word not in _RELATION_WORDS:
            continue
        start, stop = clause(tokens, i)
        if word == "than":
            found += _comparisons(tokens, i, start, stop)
        elif word in BEFORE_AFTER or (
            word == "prior" and tokens[i + 1 : i + 2] and tokens[i + 1].lower == "to"
        ):
            found += _before_after(tokens, i, start, stop)
        elif word in {"from", "to", "into"}:
            found += _route(tokens, i, start, stop)
    return found
