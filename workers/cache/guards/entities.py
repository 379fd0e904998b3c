"""The entity guard: "the capital of France" is not "the capital of Spain".

Names are found without a named-entity model, from how words look: a capital letter on a
word that does not start a sentence, acronyms ("AWS"), and inner capitals ("iPhone",
"GitHub", even at the start); hyphens inside words are dropped first ("Wi-Fi" = "WiFi").
Stopwords, date words and "I" are not names, and a text in capitals keeps only its inner
capitals. A name in one text matches the other text when the other holds the same word in
any case, singular or plural ("Paris" / "paris", "JOIN" / "joins"). Names written in
lowercase are not seen, unless the texts differ by that one word (the substitution guard).
"""

from __future__ import annotations

import re

from workers.cache.guards.lexicon import BARE_UNITS, NOT_NAMES, UNITS_NAMED
from workers.cache.guards.tokens import is_inner_capital, tokenize, words

_CONNECTORS = frozenset({"of", "and", "the", "for", "on", "in", "de"})


def _is_acronym(word: str) -> bool:
    return len(word) >= 2 and word.isalpha() and word.isupper()


def entities(text: str) -> frozenset[str]:
    """The lowercased names ``text`` mentions."""
    every = tokenize(text)
    # units are the unit guard's, not names: after a number ("72 F", "5 GB") or by name ("Celsius")
    units = {
        i
        for i, t in enumerate(every)
        if t.lower in BARE_UNITS or (i > 0 and every[i - 1].kind == "num" and t.lower in UNITS_NAMED)
    }
    tokens = [t for i, t in enumerate(every) if t.kind == "word" and i not in units]
    shouting = len(tokens) >= 3 and sum(_is_acronym(t.text) for t in tokens) >= 0.6 * len(tokens)
    found: set[str] = set()
    for token in tokens:
        word = token.text
        if token.lower in NOT_NAMES or (shouting and not is_inner_capital(word)):
            continue
        if is_inner_capital(word) or _is_acronym(word) or (word[0].isupper() and not token.sentence_start):
            found.add(token.lower)
    return frozenset(found)


def _joined(text: str) -> str:
    """``text`` with the hyphens inside words taken out: "Wi-Fi" reads as "WiFi"."""
    return re.sub(r"(?<=[A-Za-z])-(?=[A-Za-z])", "", text)


def _mentions(name: str, text_words: set[str]) -> bool:
    """Whether ``text_words`` hold ``name``, in the singular or the plural ("JOIN" / "joins")."""
    forms = {name, name + "s", name + "es", name.removesuffix("s"), name.removesuffix("es")}
    forms |= {name[:-1] + "ies", name[:-3] + "y"} if name.endswith(("y", "ies")) else set()  # "Families"
    return bool(forms & text_words)


def initialisms(text: str) -> dict[str, frozenset[str]]:
    """The initialisms a run of capitalised words spells, with the run's words.

    "the Federal Bureau of Investigation" spells "fbi" (and "fboi"): connectors inside a run
    may count or not. Runs of at least two capitalised words are read.
    """
    tokens = tokenize(text)
    found: dict[str, frozenset[str]] = {}
    for start, token in enumerate(tokens):
        if token.kind != "word" or not token.text[0].isupper() or token.lower in _CONNECTORS:
            continue
        spellings, run, capitals = {""}, [], 0
        for t in tokens[start : start + 8]:
            if t.kind != "word" or not (t.text[0].isupper() or t.lower in _CONNECTORS):
                break
            run.append(t.lower)
            optional = t.lower in _CONNECTORS
            spellings = (
                spellings | {s + t.lower[0] for s in spellings}
                if optional
                else {s + t.lower[0] for s in spellings}
            )
            capitals += not optional
            if capitals >= 2 and not optional:
                found.update(dict.fromkeys(spellings, frozenset(run)))
    return found


def _unmatched(
    names: frozenset[str], other_words: set[str], other_initialisms: dict[str, frozenset[str]]
) -> set[str]:
    """The ``names`` the other text neither mentions nor spells out."""
    return {name for name in names if not _mentions(name, other_words) and name not in other_initialisms}


def entity_mismatch(a: str, b: str) -> bool:
    """Whether a name in one text is missing (in every case, and not spelled out) from the other."""
    a, b = _joined(a), _joined(b)
    words_a, words_b = words(a), words(b)
    initialisms_a, initialisms_b = initialisms(a), initialisms(b)
    missing_a = _unmatched(entities(a), words_b, initialisms_b)
    missing_b = _unmatched(entities(b), words_a, initialisms_a)
    # the words of a run the other text abbreviates are the abbreviation, not names of their own
    spelled_a = {word for name in entities(b) if name in initialisms_a for word in initialisms_a[name]}
    spelled_b = {word for name in entities(a) if name in initialisms_b for word in initialisms_b[name]}
    return bool(missing_a - spelled_a) or bool(missing_b - spelled_b)
