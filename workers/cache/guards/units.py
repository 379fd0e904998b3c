"""The unit guard: "5 km in miles" is not "5 miles in km", "5 minutes" is not "5 hours".

A quantity is a number with its unit ("5 km", "5km", "$5", "5 dollars", "USD 5"), read to
(value, the units its name may stand for), so "5 km" = "5 kilometres" and "$25" =
"twenty-five dollars". Two texts differ when they give one value different units, when both
ask for a unit ("how many miles", "in hours") and not the same one, or when each names a
unit the other does not ("in minutes" / "in hours"). The units are ``[units]`` in
lexicon.toml; the number guard, which runs first, has already compared the values.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from workers.cache.guards.dates import read_dates
from workers.cache.guards.lexicon import BARE_UNITS, UNIT_ASKED_AFTER, UNIT_DIMENSIONS, UNITS_NAMED
from workers.cache.guards.numbers import number_spans
from workers.cache.guards.tokens import Token, tokenize

Tokens = tuple[Token, ...]
Units = frozenset[str]
_SYMBOLS = {"$": "$", "€": "€", "£": "£", "¥": "¥", "₹": "₹"}


class Measures(NamedTuple):
    """What a text says about units: its quantities, the units it asks for, every unit it names."""

    quantities: frozenset[tuple[str, Units]]
    asked: frozenset[Units]
    named: frozenset[Units]


def unit_at(tokens: Tokens, i: int) -> tuple[Units, str, int] | None:
    """The unit named at ``tokens[i]``: its units, its name and the index after it.

    "square metres" is another unit than "metres", "light-seconds" and "miles per hour" are
    one unit each, and a plural spelled with a plain "s" ("inchs") is the plural.
    """
    if i >= len(tokens) or tokens[i].kind != "word":
        return None
    word = tokens[i].lower
    following = tokens[i + 1].lower if i + 1 < len(tokens) else ""
    if f"{word}-{following}" in UNITS_NAMED:
        return UNITS_NAMED[f"{word}-{following}"], f"{word}-{following}", i + 2
    rate = f"{word}/{tokens[i + 2].lower}" if following == "per" and i + 2 < len(tokens) else ""
    if rate in UNITS_NAMED:  # "miles per hour" is "mph"
        return UNITS_NAMED[rate], rate, i + 3
    if word in UNIT_DIMENSIONS and (inner := unit_at(tokens, i + 1)) is not None:
        return frozenset(f"{word[:2]}:{unit}" for unit in inner[0]), inner[1], inner[2]
    name = (
        word if word in UNITS_NAMED else word[:-1] if word.endswith("s") and word[:-1] in UNITS_NAMED else ""
    )
    return (UNITS_NAMED[name], name, i + 1) if name else None


def _quantity_unit(tokens: Tokens, start: int, end: int) -> tuple[Units, set[int]] | None:
    """The unit of the number at ``tokens[start:end]`` and the indices it takes: a symbol in
    it, a name after ("degrees" passed over), or a code before ("USD 5")."""
    symbol = tokens[start].text.lstrip("-")[:1]
    if symbol in _SYMBOLS:
        return UNITS_NAMED[_SYMBOLS[symbol]], set()
    if end < len(tokens) and tokens[end].lower in {"degree", "degrees"}:
        end += 1
    after = unit_at(tokens, end)
    if after is not None:
        return after[0], set(range(end, after[2]))
    before = tokens[start - 1] if start > 0 else None
    if before is not None and before.kind == "word" and before.text.isupper() and before.lower in UNITS_NAMED:
        return UNITS_NAMED[before.lower], {start - 1}
    return None


@lru_cache(maxsize=4096)
def measures(text: str) -> Measures:
    """The quantities, asked units and named units of ``text``."""
    tokens = tokenize(text)
    quantities: set[tuple[str, Units]] = set()
    taken: set[int] = set()
    for value, start, end in number_spans(tokens, read_dates(tokens)[1]):
        unit = _quantity_unit(tokens, start, end)
        if unit is not None:
            quantities.add((value, unit[0]))
            taken |= unit[1]
    asked: set[Units] = set()
    named: set[Units] = {units for _, units in quantities}
    i = 0
    while i < len(tokens):
        found = None if i in taken else unit_at(tokens, i)
        if found is None:
            i += 1
            continue
        units, name, i_next = found
        if i > 0 and tokens[i - 1].lower in UNIT_ASKED_AFTER:
            asked.add(units)
            named.add(units)
        elif name in BARE_UNITS or i_next - i > 1:
            named.add(units)
        i = i_next
    return Measures(frozenset(quantities), frozenset(asked), frozenset(named))


def _unmatched(mine: frozenset[Units], theirs: frozenset[Units]) -> bool:
    """Whether one of ``mine`` shares no unit with any of ``theirs``."""
    return any(not any(units & other for other in theirs) for units in mine)


def _regauged(mine: Measures, theirs: Measures) -> bool:
    """Whether a value of ``mine`` comes with other units in ``theirs`` ("5 km" / "5 miles")."""
    for value, units in mine.quantities:
        others = [u for v, u in theirs.quantities if v == value]
        if others and not any(units & other for other in others):
            return True
    return False


def unit_mismatch(a: str, b: str) -> bool:
    """Whether the texts give a value other units, ask for other units, or each name a unit of its own."""
    mine, theirs = measures(a), measures(b)
    if _regauged(mine, theirs) or _regauged(theirs, mine):
        return True
    both_ask = bool(mine.asked) and bool(theirs.asked)
    if both_ask and _unmatched(mine.asked, theirs.asked) and _unmatched(theirs.asked, mine.asked):
        return True  # "in kilometres" / "in light-seconds", "how many miles" / "how many km"
    return _unmatched(mine.named, theirs.named) and _unmatched(theirs.named, mine.named)
