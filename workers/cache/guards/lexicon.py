"""The guards' vocabulary: the word lists of ``lexicon.toml`` as typed sets and tables.

The lists are data so that teaching a guard a word is an edit of the TOML file, not of its
code. This module reads the file once, at import, and shapes each list the way the guards
look words up: sets for membership, ``word -> value`` tables for meanings.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal
from importlib import resources
from typing import Any

Pole = tuple[str, int]  # (axis, +1 or -1)


def _load() -> dict[str, Any]:
    text = resources.files("workers.cache.guards").joinpath("lexicon.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _numbered(text: str, start: int, step: int = 1) -> dict[str, int]:
    """``word -> value`` for a list of words in order: the first is ``start``, each next ``step`` more."""
    return {word: start + step * position for position, word in enumerate(text.split())}


def _kinds(table: dict[str, str]) -> dict[str, str]:
    """``word -> kind`` from ``kind -> its words``."""
    return {word: kind for kind, words in table.items() for word in words.split()}


def _poles(axes: dict[str, list[str]]) -> dict[str, tuple[Pole, ...]]:
    """``word -> its (axis, pole) pairs`` from ``axis -> [positive words, negative words]``."""
    poles: dict[str, tuple[Pole, ...]] = {}
    for axis, (up, down) in axes.items():
        for words, pole in ((up, 1), (down, -1)):
            for word in words.split():
                poles[word] = (*poles.get(word, ()), (axis, pole))
    return poles


def _phrases(table: dict[str, list[Any]]) -> dict[tuple[str, str], Pole]:
    phrases: dict[tuple[str, str], Pole] = {}
    for phrase, (axis, pole) in table.items():
        first, second = phrase.split()
        phrases[(first, second)] = (str(axis), int(pole))
    return phrases


_DATA = _load()
_DATES, _NUMBERS = _DATA["dates"], _DATA["numbers"]
_DIRECTION, _QUESTIONS = _DATA["direction"], _DATA["questions"]

STOPWORDS = _words(_DATA["shared"]["stopwords"])

NEGATORS = _words(_DATA["negation"]["negators"])
BARE_CONTRACTIONS = _words(_DATA["negation"]["bare_contractions"])
NEGATING_PREFIXES = tuple(_DATA["negation"]["prefixes"].split())

MONTHS = {name: number for number, names in enumerate(_DATES["months"], 1) for name in names.split()}
AMBIGUOUS_MONTHS = _words(_DATES["ambiguous_months"])
MAY_MONTH_AFTER = _words(_DATES["may_month_after"])
WEEKDAYS = _words(_DATES["weekdays"])
SEASONS = _words(_DATES["seasons"])
AMBIGUOUS_SEASONS = _words(_DATES["ambiguous_seasons"])
HOLIDAYS = _words(_DATES["holidays"])
RELATIVE_DAYS = _words(_DATES["relative_days"])
RELATIVE_MODIFIERS = _words(_DATES["relative_modifiers"])
RELATIVE_UNITS = _words(_DATES["relative_units"]) | WEEKDAYS | SEASONS | AMBIGUOUS_SEASONS
TIME_PREPOSITIONS = _words(_DATES["time_prepositions"])
COUNTED = _words(_DATES["counted"])
MERIDIEMS = _words(_DATES["meridiems"])
ORDINAL_SUFFIXES = _words(_DATES["ordinal_suffixes"])
CLOCK_WORDS: dict[str, str] = dict(_DATES["clock_words"])
DATE_WORDS = frozenset(
    set(MONTHS) | WEEKDAYS | SEASONS | HOLIDAYS | RELATIVE_DAYS | set(CLOCK_WORDS) | MERIDIEMS
)

UNITS = _numbered(_NUMBERS["units"], 0)
TENS = _numbered(_NUMBERS["tens"], 20, step=10)
ORDINALS = _numbered(_NUMBERS["ordinals"], 0) | {name.replace("ty", "tieth"): n for name, n in TENS.items()}
SCALES: dict[str, int] = dict(_NUMBERS["scales"])
SUFFIX_SCALES: dict[str, int] = dict(_NUMBERS["suffix_scales"])
OTHER_NUMBERS = {word: Decimal(value) for word, value in _NUMBERS["other_numbers"].items()}
A_NUMBER = {**SCALES, "dozen": int(OTHER_NUMBERS["dozen"])}  # "a hundred", "a dozen"
ONE_PRONOUN_BEFORE = _words(_NUMBERS["one_pronoun_before"])
ONE_PRONOUN_AFTER = _words(_NUMBERS["one_pronoun_after"])
PERCENT_WORDS = _words(_NUMBERS["percent_words"])
SECOND_AS_TIME_AFTER = _words(_NUMBERS["second_as_time_after"])

NOT_NAMES = _words(_DATA["entities"]["not_names"]) | DATE_WORDS | STOPWORDS

POLES = _poles(_DIRECTION["poles"])
PHRASES = _phrases(_DIRECTION["phrases"])
BEFORE_AFTER: dict[str, int] = dict(_DIRECTION["before_after"])
COMPARING: dict[str, int] = dict(_DIRECTION["comparing"])
ROUTE_CUES = _words(_DIRECTION["route_cues"])

ABBREVIATIONS: dict[str, str] = dict(_DATA["abbreviations"])  # abbreviation -> its forms, ";" apart

UNITS_NAMED: dict[str, frozenset[str]] = {}  # a unit's name -> the units it may stand for
for _unit, _names in _DATA["units"].items():
    for _name in _names.split():
        UNITS_NAMED[_name] = UNITS_NAMED.get(_name, frozenset()) | {_unit}
BARE_UNITS = _words(_DATA["unit_words"]["bare"])
UNIT_DIMENSIONS = _words(_DATA["unit_words"]["dimensions"])
UNIT_ASKED_AFTER = _words(_DATA["unit_words"]["asked_after"])

_ROLES = _DATA["roles"]
SYMMETRIC = _words(_ROLES["symmetric"])
IRREGULAR_FORMS = dict(pair.split(":") for pair in _ROLES["irregular"].split())
BE_FORMS = _words(_ROLES["be_forms"])
AUXILIARIES = _words(_ROLES["auxiliaries"])
WH_OPERANDS = _words(_ROLES["wh_operands"])
CLAUSE_OPENERS = _words(_ROLES["clause_openers"])
RELATIVES = _words(_ROLES["relatives"])
PRONOUNS = dict(pair.split(":") for pair in _ROLES["pronouns"].split())

LEADING = _words(_QUESTIONS["leading"])
WH = _kinds(_QUESTIONS["wh"])
HOW = _kinds(_QUESTIONS["how"])
WHAT_NOUNS = _kinds(_QUESTIONS["what_nouns"])
