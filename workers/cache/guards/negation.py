"""The negation guard: "Is X safe?" is not "Is X not safe?" nor "Is X unsafe?".

A text negates when it holds a negation marker (not, no, never, none, nobody, nothing,
nowhere, neither, nor, without, cannot, unable, non, any ``n't`` contraction or its
apostrophe-less spelling such as "dont"); "or not" ("should I or not?") and "No. 5" do not
count. Apart from that, a word in one text that is a word of the other with a negating
prefix (un-, in-, im-, il-, ir-, dis-, non-: "safe" / "unsafe") is a negation too.
"""

from __future__ import annotations

from workers.cache.guards.lexicon import BARE_CONTRACTIONS, NEGATING_PREFIXES, NEGATORS
from workers.cache.guards.tokens import tokenize, words


def negations(text: str) -> frozenset[str]:
    """``{"not"}`` when ``text`` negates, else empty."""
    tokens = tokenize(text)
    for i, token in enumerate(tokens):
        word = token.lower
        is_negator = word in NEGATORS or word.endswith("n't") or word in BARE_CONTRACTIONS
        if not is_negator or token.kind != "word":
            continue
        after = tokens[i + 1] if i + 1 < len(tokens) else None
        before = tokens[i - 1].lower if i > 0 else ""
        if word == "no" and after is not None and after.text == "." and token.text in {"No", "no"}:
            continue  # "No. 5"
        if word == "not" and before == "or":
            continue  # "should I or not?"
        return frozenset({"not"})
    return frozenset()


def prefix_negation(a: str, b: str) -> bool:
    """Whether a word of one text is a word of the other with a negating prefix ("unsafe")."""
    words_a, words_b = words(a), words(b)
    for mine, theirs in ((words_a - words_b, words_b - words_a), (words_b - words_a, words_a - words_b)):
        for word in mine:
            for prefix in NEGATING_PREFIXES:
                stem = word[len(prefix) :]
                if word.startswith(prefix) and len(stem) >= 3 and stem in theirs:
                    return True
    return False


def negation_mismatch(a: str, b: str) -> bool:
    """Whether one text negates and the other does not."""
    return negations(a) != negations(b) or prefix_negation(a, b)
