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

from workers.cache.guards.lexicon import NOT_NAMES
from workers.cache.guards.tokens import is_inner_capital, tokenize, words


def _is_acronym(word: str) -> bool:
    return len(word) >= 2 and word.isalpha() and word.isupper()


def entities(text: str) -> frozenset[str]:
    """The lowercased names ``text`` mentions."""
    tokens = [t for t in tokenize(text) if t.kind == "word"]
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
    return bool(forms & text_words)


def entity_mismatch(a: str, b: str) -> bool:
    """Whether a name in one text is missing (in every case) from the other."""
    words_a, words_b = words(a) | words(_joined(a)), words(b) | words(_joined(b))
    return any(not _mentions(name, words_b) for name in entities(_joined(a))) or any(
        not _mentions(name, words_a) for name in entities(_joined(b))
    )
