"""The dates a text names, for the date guard (and the tokens they take from the numbers).

Read: years (1900-2099, or 1000-1899 after a preposition of time), decades ("1990s"),
centuries ("19th century"), months (with the day numbers next to them), weekdays, quarters
("Q3", "third quarter"), seasons, holidays, clock times ("5pm", "17:30", "noon"), ISO or
slashed dates, and relative dates ("today", "next week", "last year", "ago"). Each feature
is a string ("year:2019", "month:3", "next:week"), so two texts' dates compare as sets.

Each token kind has its readers, tried in order; the first that reads a date at a token
wins. A reader also returns the indices of the tokens it used, which the number extractor
then leaves alone (the "3" of "March 3" is a day, not a number).
"""

from __future__ import annotations

from collections.abc import Callable

from workers.cache.guards.lexicon import (
    AMBIGUOUS_MONTHS,
    AMBIGUOUS_SEASONS,
    CLOCK_WORDS,
    COUNTED,
    HOLIDAYS,
    MAY_MONTH_AFTER,
    MERIDIEMS,
    MONTHS,
    ORDINAL_SUFFIXES,
    ORDINALS,
    RELATIVE_DAYS,
    RELATIVE_MODIFIERS,
    RELATIVE_UNITS,
    SEASONS,
    TENS,
    TIME_PREPOSITIONS,
    WEEKDAYS,
)
from workers.cache.guards.tokens import Token, tokenize

Tokens = tuple[Token, ...]
Found = tuple[set[str], set[int]]  # date features, and the indices of the tokens they used
Reader = Callable[[Tokens, int], Found | None]


def _at(tokens: Tokens, i: int) -> Token | None:
    return tokens[i] if 0 <= i < len(tokens) else None


def _integer(token: Token | None) -> int | None:
    """A plain whole number token's value ("2019", not "$2019", "2.5" or "1,000")."""
    if token is None or token.kind != "num" or not token.text.isdigit():
        return None
    return int(token.text)


def _day_from(tokens: Tokens, i: int, forward: bool) -> tuple[int, set[int]] | None:
    """A day of the month starting (``forward``) or ending at ``i``: "3", "3rd", "third"."""
    if not 0 <= i < len(tokens):
        return None
    token = tokens[i]
    if not forward and token.lower in ORDINAL_SUFFIXES and token.attached and i >= 1:
        value = _integer(tokens[i - 1])
        return (value, {i - 1, i}) if value is not None and 1 <= value <= 31 else None
    value = _integer(token)
    if value is not None and 1 <= value <= 31:
        suffix = i + 1 < len(tokens) and tokens[i + 1].attached and tokens[i + 1].lower in ORDINAL_SUFFIXES
        return value, {i, i + 1} if suffix else {i}
    ordinal = ORDINALS.get(token.lower)
    return (ordinal, {i}) if ordinal is not None and 1 <= ordinal <= 31 else None


def _day_next_to_month(tokens: Tokens, i: int) -> tuple[int, set[int]] | None:
    """The day written with the month at ``i``: "March 3", "3 March", "the 3rd of March"."""
    day = _day_from(tokens, i + 1, forward=True) or _day_from(tokens, i - 1, forward=False)
    if day is None and i >= 2 and tokens[i - 1].lower == "of":
        day = _day_from(tokens, i - 2, forward=False)
    return day


def _is_month(tokens: Tokens, i: int) -> bool:
    """Whether the month name at ``i`` means the month ("in May"), not a word ("May I")."""
    token = tokens[i]
    if token.lower not in AMBIGUOUS_MONTHS:
        return True
    near_number = any(0 <= j < len(tokens) and tokens[j].kind == "num" for j in (i - 1, i + 1)) or (
        i + 2 < len(tokens) and tokens[i + 1].lower == "of" and tokens[i + 2].kind == "num"
    )
    capitalised = token.text[0].isupper() and not token.sentence_start and token.lower != "may"
    prev = tokens[i - 1].lower if i > 0 else ""
    may_month = token.text == "May" and prev in TIME_PREPOSITIONS | MAY_MONTH_AFTER
    return near_number or capitalised or may_month


def _ordinal_before(tokens: Tokens, i: int) -> tuple[int, set[int]] | None:
    """The ordinal just before ``tokens[i]`` ("19th", "nineteenth"), with the indices it used."""
    j = i - 1
    if j >= 0 and tokens[j].lower == "the":
        j -= 1
    if j < 0:
        return None
    if j >= 1 and tokens[j].lower in ORDINAL_SUFFIXES and tokens[j].attached:
        value = _integer(tokens[j - 1])
        return (value, {j - 1, j}) if value is not None else None
    ordinal = ORDINALS.get(tokens[j].lower)
    if ordinal is not None:
        # "twenty-first": the tens word before it belongs to the same ordinal
        if j >= 1 and tokens[j - 1].lower in TENS and ordinal < 10:
            return TENS[tokens[j - 1].lower] + ordinal, {j - 1, j}
        return ordinal, {j}
    return None


def _isodate(tokens: Tokens, i: int) -> Found | None:
    year, month, day = (int(part) for part in tokens[i].text.split("-"))
    return {f"year:{year}", f"month:{month}", f"day:{day}"}, {i}


def _slashdate(tokens: Tokens, i: int) -> Found | None:
    return {"date:" + "/".join(str(int(part)) for part in tokens[i].text.split("/"))}, {i}


def _clock(tokens: Tokens, i: int) -> Found | None:
    """A clock time, with the am or pm after it: "17:30", "5:30 pm"."""
    hour, minute = tokens[i].text.split(":")
    nxt = _at(tokens, i + 1)
    suffix = nxt.lower if nxt is not None and nxt.lower in MERIDIEMS else ""
    return {f"time:{int(hour)}:{minute}{suffix}"}, {i}


def _number_date(tokens: Tokens, i: int) -> Found | None:
    """A whole number that is a date: a decade ("1990s"), "5pm", "Q3" or a year."""
    token, nxt, prev = tokens[i], _at(tokens, i + 1), _at(tokens, i - 1)
    value = _integer(token)
    if value is None:
        return None
    if nxt is not None and nxt.attached and nxt.lower == "s":
        return {f"decade:{value}"}, {i, i + 1}  # 1990s, 90s
    if nxt is not None and nxt.lower in MERIDIEMS and value <= 12:
        return {f"time:{value}:00{nxt.lower}"}, {i, i + 1}
    if prev is not None and prev.lower == "q" and token.attached and value in {1, 2, 3, 4}:
        return {f"quarter:{value}"}, {i - 1, i}
    before = prev.lower if prev is not None else ""
    counted = nxt is not None and nxt.lower in COUNTED  # "2000 calories" is a count
    if (1900 <= value <= 2099 and not counted) or (1000 <= value < 1900 and before in TIME_PREPOSITIONS):
        return {f"year:{value}"}, {i}
    return None


def _month(tokens: Tokens, i: int) -> Found | None:
    """A month, with its day when one is written next to it."""
    word = tokens[i].lower
    if word not in MONTHS or not _is_month(tokens, i):
        return None
    features, used = {f"month:{MONTHS[word]}"}, {i}
    day = _day_next_to_month(tokens, i)
    if day is not None:
        features.add(f"day:{day[0]}")
        used |= day[1]
    return features, used


def _named_day(tokens: Tokens, i: int) -> Found | None:
    """A weekday, a season, a holiday, a relative day ("tomorrow") or a clock word ("noon")."""
    word, prev = tokens[i].lower, _at(tokens, i - 1)
    if word in WEEKDAYS or word.rstrip("s") in WEEKDAYS:
        return {f"weekday:{word.rstrip('s')}"}, set()
    if word in SEASONS or (
        word in AMBIGUOUS_SEASONS and prev is not None and prev.lower in RELATIVE_MODIFIERS | {"in"}
    ):
        return {f"season:{'autumn' if word == 'fall' else word}"}, set()
    if word in HOLIDAYS:
        return {f"holiday:{word}"}, set()
    if word in RELATIVE_DAYS:
        return {word}, set()
    if word in CLOCK_WORDS:
        return {f"time:{CLOCK_WORDS[word]}"}, set()
    return None


def _relative(tokens: Tokens, i: int) -> Found | None:
    """A relative date of a modifier and a unit: "next week", "last year"."""
    word, nxt = tokens[i].lower, _at(tokens, i + 1)
    if word in RELATIVE_MODIFIERS and nxt is not None and nxt.lower.rstrip("s") in RELATIVE_UNITS:
        return {f"{word}:{nxt.lower.rstrip('s')}"}, set()
    return None


def _ordinal_period(tokens: Tokens, i: int) -> Found | None:
    """A century or a quarter after its ordinal: "19th century", "the third quarter"."""
    word = tokens[i].lower
    if word not in {"century", "quarter"}:
        return None
    ordinal = _ordinal_before(tokens, i)
    if ordinal is None or (word == "quarter" and ordinal[0] > 4):
        return None
    return {f"{word}:{ordinal[0]}"}, ordinal[1]


_READERS: dict[str, tuple[Reader, ...]] = {
    "isodate": (_isodate,),
    "slashdate": (_slashdate,),
    "clock": (_clock,),
    "num": (_number_date,),
    "word": (_month, _named_day, _relative, _ordinal_period),
}


def read_dates(tokens: Tokens) -> tuple[frozenset[str], set[int]]:
    """The date features of ``tokens`` and the indices of the tokens they used."""
    features: set[str] = set()
    used: set[int] = set()
    for i, token in enumerate(tokens):
        for reader in _READERS.get(token.kind, ()):
            found = reader(tokens, i)
            if found is not None:
                features |= found[0]
                used |= found[1]
                break
    return frozenset(features), used


def dates(text: str) -> frozenset[str]:
    """The years, months, days, weekdays, times and relative dates ``text`` names."""
    return read_dates(tokenize(text))[0]
