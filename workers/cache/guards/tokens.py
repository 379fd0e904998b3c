"""The guards' tokenizer: a text as words, numbers, dates, clock times and clause punctuation.

Both texts are normalised (Unicode NFKC, curly quotes straightened) and split into tokens:
words (with their contractions and possessives), numbers (thousands separators, decimals,
percentages, a leading minus), ISO and slashed dates, clock times and clause punctuation.
Each token knows whether it starts a sentence and whether it touches the token before it
("5k", "1990s", "3rd", "Q2"). Every guard reads these tokens; none reads the raw text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from workers.cache.guards.abbreviations import fold_abbreviations

_TOKEN = re.compile(
    r"""
    (?P<isodate>\d{4}-\d{1,2}-\d{1,2})
  | (?P<slashdate>\d{1,2}/\d{1,2}/\d{2,4})
  | (?P<clock>\d{1,2}:\d{2})
  | (?P<num>(?:(?<![\w.])-)?[$€£¥]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?%?)
  | (?P<word>[A-Za-z]+(?:'[A-Za-z]+)*'?)
  | (?P<punct>[.?!;:,()\n"])
    """,
    re.VERBOSE,
)
_SENTENCE_END = {".", "?", "!", ";", ":", "\n", '"', "("}
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "`": "'"})
_DEGREES = re.compile(r"\s*°\s*([CFK](?![A-Za-z]))?")
_SCALES = {"C": "celsius", "F": "fahrenheit", "K": "kelvin"}
CLAUSE_BREAKS = frozenset({".", "?", "!", ";", ",", "\n", "(", ")"})
CLAUSE_WINDOW = 24  # tokens read either side of a word for its clause, so long texts cost linear time


@dataclass(frozen=True)
class Token:
    """One token of a text: its kind, its text as written and lowercased, and its context."""

    kind: str  # isodate, slashdate, clock, num, word or punct
    text: str
    lower: str
    sentence_start: bool  # the first word of the text or of a sentence
    attached: bool  # no space between this token and the one before
    possessive: bool = False  # written with "'s" or "s'": "Alice's", "teachers'"


def normalise(text: str) -> str:
    """NFKC, straight quotes, dashes as hyphens, "°C" as "degrees celsius", single spaces, and
    abbreviations for their spelled-out forms."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    text = re.sub(r"[\u2010-\u2015]", "-", text)
    text = _DEGREES.sub(lambda m: " degrees " + _SCALES.get(m.group(1) or "", ""), text)
    return fold_abbreviations(re.sub(r"[ \t\r\f\v]+", " ", text).strip())


@lru_cache(maxsize=4096)
def tokenize(text: str) -> tuple[Token, ...]:
    """``text``'s tokens, after :func:`normalise`."""
    tokens: list[Token] = []
    start_next = True
    end = -1
    for match in _TOKEN.finditer(normalise(text)):
        kind = match.lastgroup or "punct"
        raw = match.group()
        possessive = False
        if kind == "word":
            possessive = raw.lower().endswith(("'s", "s'"))
            raw = raw.rstrip("'")
            if raw.lower().endswith("'s"):
                raw = raw[:-2]
        if not raw:
            continue
        starts = start_next and kind != "punct"
        tokens.append(Token(kind, raw, raw.lower(), starts, match.start() == end, possessive))
        end = match.end()
        start_next = kind == "punct" and (start_next or raw in _SENTENCE_END)
    return tuple(tokens)


def words(text: str) -> set[str]:
    """The lowercased words and numbers of ``text``."""
    return {t.lower for t in tokenize(text) if t.kind != "punct"}


def clause(tokens: tuple[Token, ...], i: int) -> tuple[int, int]:
    """The bounds of the clause around ``tokens[i]`` (between punctuation), at most
    ``CLAUSE_WINDOW`` tokens either side."""
    start = i
    while start > max(0, i - CLAUSE_WINDOW) and tokens[start - 1].text not in CLAUSE_BREAKS:
        start -= 1
    stop = i
    while stop < min(len(tokens), i + CLAUSE_WINDOW) and tokens[stop].text not in CLAUSE_BREAKS:
        stop += 1
    return start, stop


def is_inner_capital(word: str) -> bool:
    """A capital letter after a lowercase one: "iPhone", "GitHub", "macOS"."""
    return bool(re.search(r"[a-z][A-Z]", word))
