"""The role guard: "Did Alice pay Bob?" is not "Did Bob pay Alice?".

The same content words with two of them swapped around a verb or noun ("Apple sued Samsung"
/ "Samsung sued Apple", "Python tutorial for Java developers" / "Java tutorial for Python
developers", "Lakers vs Celtics" / "Celtics vs Lakers") or around a possessive ("the
teacher's student" / "the student's teacher") ask about other roles. Each text is read as
:class:`~workers.cache.guards.relations.Relation` s: for every content word (the pivot), the
operands of its clause before it and after it, so a swap is two operands that change sides
of one pivot; moving one phrase ("In Excel, how do I ..." / "How do I ... in Excel")
changes the side of one word only and is no swap. A person pronoun that acts in one text
and is acted on in the other is a swap too ("I send them a text" / "the recipient sends me
a text").

Read the same: the passive and the active ("Bob was paid by Alice" = "Alice paid Bob"), a
clause-opening who or whom in its role ("Who did Alice pay?" / "Who paid Alice?"), "A's B"
and "B of A", symmetric words, which never pivot ("married", "met", "difference", "plus";
``[roles]`` in lexicon.toml), "X vs Y" in a text that compares them, and keywords against a
sentence ("UK VAT rate standard" keeps no order). A noun after a determiner ("get a refund")
is another pivot than its verb ("they refund me"). Comparisons and routes ("than", "from X
to Y", "before") are the direction guard's.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from workers.cache.guards.lexicon import (
    AUXILIARIES,
    BE_FORMS,
    CLAUSE_OPENERS,
    IRREGULAR_FORMS,
    RELATIVES,
    STOPWORDS,
    SYMMETRIC,
    WH_OPERANDS,
)
from workers.cache.guards.relations import Relation, contradicted, operand, ordered
from workers.cache.guards.tokens import CLAUSE_BREAKS, Token, tokenize

Tokens = tuple[Token, ...]
_DETERMINERS = frozenset(
    {"a", "an", "the", "this", "that", "my", "your", "his", "her", "our", "their", "its"}
)
_OTHER = frozenset({"other", "another", "others"})
_VERSUS = frozenset({"vs", "versus", "v"})
_WINDOW = 12  # words read either side of a pivot
_WH = "?wh"  # the operand a clause-opening who or whom stands for


@lru_cache(maxsize=16384)
def lemma(word: str) -> str:
    """A crude base form, the same for a verb's or a noun's forms: "chased", "chases" -> "chas"."""
    if word in IRREGULAR_FORMS:
        return IRREGULAR_FORMS[word]
    for suffix, replacement in (("ies", "y"), ("ied", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 2 and not word.endswith("ss"):
            word = word[: -len(suffix)] + replacement
            break
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "slz":
        word = word[:-1]  # "stopped" -> "stop"
    return word[:-1] if len(word) > 2 and word.endswith("e") else word


_SYMMETRIC = frozenset(lemma(word) for word in SYMMETRIC)


class Word(NamedTuple):
    """A content word of a clause (or a stopword the role reading needs), by its lemma."""

    lemma: str
    content: bool
    pivot: bool  # may a role turn on it: not a name, a number or a symmetric word
    participle: bool = False  # "paid", "supported": passive after a be-form
    noun: bool = False  # after a determiner: "a refund" is not the verb of "they refund me"


_OF = Word("of", False, True)  # "of" (and the possessive read as it) is a pivot: "student of teacher"


def _word(tokens: Tokens, i: int) -> Word:
    """The word at ``tokens[i]``: its operand's lemma, and whether a role may turn on it."""
    token = tokens[i]
    if token.lower == "of":  # "a neighbour of France" is "France's neighbour": no role turns on it
        return _OF if i == 0 or lemma(tokens[i - 1].lower) not in _SYMMETRIC else Word("of", False, False)
    word = operand(tokens, i)
    if word is None:
        return Word(token.lower, False, False)
    if word.startswith("?") or len(word) == 1:
        return Word(word, True, False)  # a pronoun or a letter: "him", "list a"
    base = lemma(word)
    name = token.kind == "num" or (token.text[:1].isupper() and not token.sentence_start)
    pivot = not name and base not in _SYMMETRIC
    participle = (word.endswith("ed") and len(word) >= 5) or word in IRREGULAR_FORMS
    return Word(base, True, pivot, participle, i > 0 and tokens[i - 1].lower in _DETERMINERS)


def _opened(clause: list[Word], opener: str) -> list[Word]:
    """A new clause after ``clause``: after "who", "which" or "that" it starts with their antecedent."""
    antecedent = [w for w in clause if w.content][-1:] if opener in RELATIVES else []
    return list(antecedent)


def clauses(text: str) -> list[list[Word]]:
    """The clauses of ``text`` as words, "A's B" read as "B of A", "other X" as one operand."""
    found: list[list[Word]] = [[]]
    held: list[Word] = []  # possessors waiting for what they own: "my friend's" of "my friend's order"
    tokens = tokenize(text)
    for i, token in enumerate(tokens):
        if token.lower in WH_OPERANDS and not found[-1]:
            found[-1].append(Word(_WH, True, False))
            continue
        if token.text in CLAUSE_BREAKS or (token.lower in CLAUSE_OPENERS and found[-1]):
            found[-1] += held
            found.append(_opened(found[-1], token.lower))
            held = []
            continue
        word = _word(tokens, i)
        if word.content and i > 0 and tokens[i - 1].lower in _OTHER:  # "other customers" is not "customers"
            word = word._replace(lemma=f"other {word.lemma}", pivot=False)
        if token.possessive and word.content:
            held.append(word)
            continue
        found[-1].append(word)
        if held and word.content:
            found[-1] += [part for owner in reversed(held) for part in (_OF, owner)]
            held = []
    found[-1] += held
    return [clause for clause in found if clause]


def _content(words: list[Word]) -> frozenset[str]:
    return frozenset(w.lemma for w in words if w.content)


def _after_be_form(before: list[Word]) -> bool:
    """Whether a verb after ``before`` is passive: "was paid", "Was Bob paid", "got paid"."""
    lemmas = [w.lemma for w in before]
    if lemmas and lemmas[-1] in BE_FORMS:
        return True
    return any(w in BE_FORMS - {"get", "gets", "got", "gotten"} for w in lemmas)


def _sides(words: list[Word], p: int) -> tuple[frozenset[str], frozenset[str]]:
    """Who acts and who is acted on at the pivot ``p``: before and after it, passive and wh read."""
    before, after = words[:p], words[p + 1 :]
    lemmas = [w.lemma for w in words]
    if _WH in lemmas[:p] and any(w in AUXILIARIES for w in lemmas[lemmas.index(_WH) + 1 : p]):
        aux = next(k for k in range(lemmas.index(_WH) + 1, p) if lemmas[k] in AUXILIARIES)
        if _content(words[aux + 1 : p]):  # "Who did Alice pay": who is paid
            before = [w for w in before if w.lemma != _WH]
            after = [*after, Word(_WH, True, False)]
    if words[p].participle and _after_be_form(before):
        by = lemmas.index("by", p + 1) if "by" in lemmas[p + 1 :] else p
        # "Bob was paid by Alice": Alice pays; "Dolby Vision is supported on the TV": the TV supports
        return _content(words[by + 1 :]), _content(before) | _content(words[p + 1 : by])
    return _content(before), _content(after)


def keywords(text: str) -> bool:
    """Whether ``text`` is a string of keywords, not a sentence: "vitamin d sources foods"."""
    return not any(t.lower in STOPWORDS for t in tokenize(text))


def compares(text: str) -> bool:
    """Whether ``text`` compares or joins things both ways: "the difference between", "vs"."""
    return any(
        lemma(t.lower) in _SYMMETRIC or t.lower in _VERSUS for t in tokenize(text) if t.lower not in STOPWORDS
    )


@lru_cache(maxsize=4096)
def roles(text: str) -> tuple[Relation, ...]:
    """Each pivot's relation: ``left`` acts on ``right`` ("Alice pay Bob": pay, {alice}, {bob})."""
    found: list[Relation] = []
    # "X vs Y" is ordered ("Lakers vs Celtics") unless the text compares ("stocks vs bonds: the difference")
    read = clauses(text)
    comparing = any(w.lemma in _SYMMETRIC for words in read for w in words)
    for words in read:
        for p, word in enumerate(words):
            if word.pivot and not (comparing and word.lemma in _VERSUS):
                start = max(0, p - _WINDOW)  # a window either side: a long clause costs linear time
                axis = f"role:{word.lemma}" + ("/noun" if word.noun else "")
                found += ordered(axis, 1, *_sides(words[start : p + _WINDOW + 1], p - start))
    return tuple(found)


def role_mismatch(a: str, b: str) -> bool:
    """Whether two content words change sides of one pivot: "Alice paid Bob" / "Bob paid Alice"."""
    if keywords(a) != keywords(b):
        return False  # keywords keep no order: "UK VAT rate standard" / "the standard rate of VAT in the UK"
    roles_a, roles_b = list(roles(a)), list(roles(b))
    return (
        contradicted(roles_a, roles_b)
        or contradicted(roles_b, roles_a)
        or _speaker_moved(roles_a, roles_b)
        or _speaker_moved(roles_b, roles_a)
    )


def _speaker_moved(mine: list[Relation], theirs: list[Relation]) -> bool:
    """Whether a person pronoun acts in one text and is acted on in the other, the doer not shared:
    "I send them a text" / "the recipient sends me a text" (who "them" is, no one can tell)."""
    return any(
        r.axis == t.axis and not r.left & t.left and any(word.startswith("?") for word in r.left & t.right)
        for r in mine
        for t in theirs
    )
