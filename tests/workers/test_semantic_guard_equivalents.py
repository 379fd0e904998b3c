"""What must not count as a changed name or number: abbreviations, number words, "one ... another"."""

from __future__ import annotations

import pytest

from workers.cache.guards import mismatch
from workers.cache.guards.abbreviations import fold_abbreviations
from workers.cache.guards.entities import initialisms
from workers.cache.guards.numbers import numbers

SAME = [
    ("What is 2FA?", "What is two-factor authentication?"),
    ("How do I set up a VPN?", "How do I set up a virtual private network?"),
    ("What is the population of NYC?", "What is the population of New York City?"),
    ("How many states are in the USA?", "How many states are in the United States?"),
    ("Is the U.S. in NATO?", "Is the USA in NATO?"),
    ("What's the CEO's salary?", "What's the chief executive officer's salary?"),
    ("Where are the FAQs?", "Where are the frequently asked questions?"),
    ("What does the FBI do?", "What does the Federal Bureau of Investigation do?"),
    ("Who runs the BBC?", "Who runs the British Broadcasting Corporation?"),
    ("What does the ECB decide?", "What does the European Central Bank decide?"),
    ("How do I contact HR?", "How do I contact human resources?"),
    ("Is AI the same as ML?", "Is artificial intelligence the same as machine learning?"),
    ("What is my ETA?", "What is my estimated time of arrival?"),
    ("Can I WFH on Fridays?", "Can I work from home on Fridays?"),
    ("How do I set up SSH keys?", "How do I set up secure shell keys?"),
    ("Buy half a dozen eggs", "Buy 6 eggs"),
    (
        "What time is it in Tokyo when it's noon in New York?",
        "When it's noon in NYC, what time is it in Tokyo?",
    ),
    ("How much does the 1Password Families plan cost?", "How much does the 1Password family plan cost?"),
    ("Docker vs VMs, explain the difference", "Docker vs virtual machines: explain the difference"),
    ("How do I combine two things?", "How do I combine one thing into another?"),
    ("How do I merge two files?", "How do I merge one file into another?"),
    ("How do I copy files between two folders?", "How do I copy files from one folder to another?"),
    ("List 2 tips", "List two tips"),
    ("Buy a dozen eggs", "Buy 12 eggs"),
    ("What is the first step?", "What is the 1st step?"),
    ("It costs twenty-five dollars", "It costs 25 dollars"),
    ("Count to a hundred", "Count to 100"),
]

DIFFERENT = [
    ("What is 2FA?", "What is 3FA?"),
    ("What is the population of NYC?", "What is the population of Los Angeles?"),
    ("How do I merge two files?", "How do I merge three files?"),
    ("How do I merge one file into another?", "How do I merge three files?"),
    ("What does the FBI do?", "What does the CIA do?"),
    ("Who runs the BBC?", "Who runs the Bank of England?"),
]


@pytest.mark.parametrize(("a", "b"), SAME)
def test_equivalent_names_and_numbers_pass_both_ways(a: str, b: str) -> None:
    assert mismatch(a, b) is None
    assert mismatch(b, a) is None


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_other_names_and_numbers_are_still_vetoed(a: str, b: str) -> None:
    assert mismatch(a, b) is not None
    assert mismatch(b, a) is not None


def test_spelled_out_forms_fold_to_their_abbreviation() -> None:
    assert fold_abbreviations("Two-Factor Authentication") == "2FA"
    assert fold_abbreviations("two-factor authentication") == "2fa"  # lowercase stays lowercase: no new name
    assert fold_abbreviations("New York City CEOs") == "NYC CEOs"
    assert fold_abbreviations("Chief Executive Officers") == "CEOs"
    assert fold_abbreviations("chief executive officers") == "ceos"
    assert fold_abbreviations("tell us about the US") == "tell us about the USA"  # "us" is a pronoun


def test_initialisms_come_from_runs_of_capitalised_words() -> None:
    assert "frb" in initialisms("the Federal Reserve Bank")
    assert "bbc" in initialisms("the British Broadcasting Corporation")
    assert initialisms("the federal bureau") == {}


def test_one_thing_into_another_counts_two() -> None:
    assert numbers("merge one file into another") == numbers("merge two files") == {"2"}
    assert numbers("one at a time") == frozenset()
