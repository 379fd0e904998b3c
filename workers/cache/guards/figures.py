"""The date guard and the number guard: "in 2019" is not "in 2020", "top 5" is not "top 10".

The two read one pass over a text (a token a date takes is not a number, so both come from
:func:`figures`) and share one exception: a four-digit number that one text reads as a year
and the other as a number ("of 1000" / "of 1,000") is the same figure, so it counts for
neither guard as a date and for both texts as a number. The date guard runs first; the
number guard reports what is left.
"""

from __future__ import annotations

from functools import lru_cache

from workers.cache.guards.dates import read_dates
from workers.cache.guards.numbers import read_numbers
from workers.cache.guards.tokens import tokenize


@lru_cache(maxsize=4096)
def figures(text: str) -> tuple[frozenset[str], frozenset[str]]:
    """The dates and the numbers of ``text`` (see dates.py and numbers.py)."""
    tokens = tokenize(text)
    found_dates, used = read_dates(tokens)
    return found_dates, read_numbers(tokens, used)


def _years_read_as_numbers(found_dates: frozenset[str], other_numbers: frozenset[str]) -> set[str]:
    """The ``year:`` features whose value the other text holds as a plain number."""
    return {f for f in found_dates if f.startswith("year:") and f[5:] in other_numbers}


def date_mismatch(a: str, b: str) -> bool:
    """Whether the texts name different dates, years the other reads as numbers aside."""
    (dates_a, numbers_a), (dates_b, numbers_b) = figures(a), figures(b)
    years_a = _years_read_as_numbers(dates_a, numbers_b)
    years_b = _years_read_as_numbers(dates_b, numbers_a)
    return dates_a - years_a != dates_b - years_b


def number_mismatch(a: str, b: str) -> bool:
    """Whether the texts hold different numbers, counting years the other reads as numbers."""
    (dates_a, numbers_a), (dates_b, numbers_b) = figures(a), figures(b)
    years_a = _years_read_as_numbers(dates_a, numbers_b)
    years_b = _years_read_as_numbers(dates_b, numbers_a)
    return numbers_a | {f[5:] for f in years_a} != numbers_b | {f[5:] for f in years_b}
