"""The numbers a text holds, for the number guard: every number the dates did not take.

Each number is read to one canonical value, so that "1,000" = "1000" = "1k" = "one
thousand": digits, written numbers from zero to the billions ("twenty-five", "a dozen",
"twice"), ordinals ("3rd" = "third", written "#3" and so kept apart from cardinals),
percentages ("5%" = "5 percent" = "5%") and negative numbers. "one" used as a pronoun
("which one", "one of") is not a number, nor is "second" as a unit of time; "one X into
another" is two ("merge one file into another" = "merge two files").
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from workers.cache.guards.dates import Tokens, read_dates
from workers.cache.guards.lexicon import (
    A_NUMBER,
    ONE_PRONOUN_AFTER,
    ONE_PRONOUN_BEFORE,
    ORDINAL_SUFFIXES,
    ORDINALS,
    OTHER_NUMBERS,
    PERCENT_WORDS,
    SCALES,
    SECOND_AS_TIME_AFTER,
    SUFFIX_SCALES,
    TENS,
    UNITS,
    UNITS_NAMED,
)
from workers.cache.guards.tokens import CLAUSE_BREAKS, tokenize


@dataclass
class _Number:
    """A number read at some token, and the index of the first token after it."""

    value: Decimal
    end: int
    ordinal: bool = False
    percent: bool = False

    def canonical(self) -> str:
        """ "1000", "#3" for an ordinal, "12.5%" for a percentage."""
        text = format(self.value.normalize(), "f")
        text = "0" if text in {"-0", "0"} else text
        return f"#{text}" if self.ordinal else f"{text}%" if self.percent else text


def _written_number(tokens: Tokens, i: int, used: set[int]) -> tuple[Decimal, bool, int]:
    """The number written in words from ``tokens[i]``: its value, whether it is an ordinal, its end."""
    total, current, last = Decimal(0), Decimal(0), ""
    j = i
    while j < len(tokens) and j not in used:
        word = tokens[j].lower
        if word in UNITS and last in {"", "tens", "scale"}:
            current, last = current + UNITS[word], "unit"
        elif word in TENS and last in {"", "scale"}:
            current, last = current + TENS[word], "tens"
        elif word in ORDINALS and last in {"tens", "scale"}:  # "twenty-first", "hundredth" aside
            return total + current + ORDINALS[word], True, j + 1
        elif word in SCALES and last in {"unit", "tens", "scale"}:
            if SCALES[word] >= 1000:
                total, current = total + current * SCALES[word], Decimal(0)
            else:
                current *= SCALES[word]
            last = "scale"
        elif not (word == "and" and last == "scale" and j + 1 < len(tokens)):
            break
        j += 1
    return total + current, False, j


def _digits(tokens: Tokens, i: int) -> _Number | None:
    """A number in digits, with what is attached ("5k", "3rd") and scale words after ("5 million")."""
    raw = tokens[i].text.replace(",", "").lstrip("$€£¥").replace("-$", "-")
    try:
        number = _Number(Decimal(raw.rstrip("%")), i + 1, percent=raw.endswith("%"))
    except InvalidOperation:
        return None
    nxt = tokens[i + 1] if i + 1 < len(tokens) else None
    if nxt is not None and nxt.attached and nxt.lower in SUFFIX_SCALES:
        number.value *= SUFFIX_SCALES[nxt.lower]
        number.end += 1
    elif nxt is not None and nxt.attached and nxt.lower in ORDINAL_SUFFIXES:
        number.ordinal = True
        number.end += 1
    while not number.ordinal and number.end < len(tokens) and tokens[number.end].lower in SCALES:
        number.value *= SCALES[tokens[number.end].lower]
        number.end += 1
    return number


def _pronoun_one(tokens: Tokens, i: int) -> bool:
    """Whether the "one" at ``i`` is a pronoun: "which one", "the old one", "one of", "one at a time"."""
    after_adjective = (  # "the old one", "a new one"; not "the top one hundred"
        i > 1
        and tokens[i - 2].lower in ONE_PRONOUN_BEFORE | {"a", "an"}
        and tokens[i - 1].kind == "word"
        and not (i + 1 < len(tokens) and tokens[i + 1].lower in SCALES)
    )
    return (
        after_adjective
        or (i > 0 and tokens[i - 1].lower in ONE_PRONOUN_BEFORE)
        or (i + 1 < len(tokens) and tokens[i + 1].lower in ONE_PRONOUN_AFTER)
        or any([t.lower for t in tokens[j : j + 3]] == ["at", "a", "time"] for j in (i + 1, i + 2))
    )


def _one_and_another(tokens: Tokens, i: int) -> bool:
    """Whether the "one" at ``i`` opens "one X ... another" or "one X ... the other": two things."""
    for j in range(i + 2, min(len(tokens), i + 8)):
        if tokens[j].text in CLAUSE_BREAKS:
            return False
        if tokens[j].lower == "another" or (tokens[j].lower == "other" and tokens[j - 1].lower == "the"):
            return True
    return False


def _spelled(tokens: Tokens, i: int, used: set[int]) -> _Number | None:
    """A number in words: "twenty-five", "third", "twice", "a dozen", "one X into another" (2)."""
    word = tokens[i].lower
    if word == "one" and _one_and_another(tokens, i):
        return _Number(Decimal(2), i + 1)
    if word == "one" and _pronoun_one(tokens, i):
        return None
    if word in UNITS or word in TENS:
        value, ordinal, end = _written_number(tokens, i, used)
        return _Number(value, end, ordinal=ordinal)
    second_of_time = word == "second" and i > 0 and tokens[i - 1].lower in SECOND_AS_TIME_AFTER
    if word in ORDINALS and not second_of_time:
        return _Number(Decimal(ORDINALS[word]), i + 1, ordinal=True)
    half_of = (
        tokens[i + 2].lower if word == "half" and i + 2 < len(tokens) and tokens[i + 1].lower == "a" else ""
    )
    if half_of in A_NUMBER:  # "half a dozen" is six
        return _Number(Decimal(A_NUMBER[half_of]) / 2, i + 3)
    if word in OTHER_NUMBERS:
        return _Number(Decimal(OTHER_NUMBERS[word]), i + 1)
    if word in {"a", "an"} and i + 1 < len(tokens) and tokens[i + 1].lower in A_NUMBER:
        return _Number(Decimal(A_NUMBER[tokens[i + 1].lower]), i + 2)
    return None


def _number_at(tokens: Tokens, i: int, used: set[int]) -> _Number | None:
    """The number starting at ``tokens[i]``, with a percent word after it ("5 per cent")."""
    if i in used:
        return None
    kind = tokens[i].kind
    number = _digits(tokens, i) if kind == "num" else _spelled(tokens, i, used) if kind == "word" else None
    if number is None:
        return None
    j = number.end
    if j < len(tokens) and tokens[j].lower in PERCENT_WORDS:
        number.percent, number.end = True, j + 1
    elif j + 1 < len(tokens) and tokens[j].lower == "per" and tokens[j + 1].lower == "cent":
        number.percent, number.end = True, j + 2
    return number


def number_spans(tokens: Tokens, used: set[int]) -> list[tuple[str, int, int]]:
    """``(canonical value, first index, index after)`` of each number in ``tokens`` not at ``used``."""
    found: list[tuple[str, int, int]] = []
    i = 0
    while i < len(tokens):
        number = _number_at(tokens, i, used)
        if number is None:
            i += 1
            continue
        found.append((number.canonical(), i, number.end))
        i = number.end
    return found


def _one_unit(tokens: Tokens, value: str, end: int) -> bool:
    """Whether the number is one of a unit: "1 TB", "one day", which say what "a terabyte" says."""
    return value == "1" and end < len(tokens) and tokens[end].lower in UNITS_NAMED


def read_numbers(tokens: Tokens, used: set[int]) -> frozenset[str]:
    """Canonical values of the numbers in ``tokens`` not at ``used`` indices ("one day" aside)."""
    return frozenset(
        value for value, _, end in number_spans(tokens, used) if not _one_unit(tokens, value, end)
    )


def numbers(text: str) -> frozenset[str]:
    """The numbers ``text`` holds, dates left out: "5", "#3" for third, "12.5%"."""
    tokens = tokenize(text)
    return read_numbers(tokens, read_dates(tokens)[1])
