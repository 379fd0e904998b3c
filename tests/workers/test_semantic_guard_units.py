"""The unit guard: a quantity is a number and its unit; "5 km" is "5 kilometres", not "5 miles"."""

from __future__ import annotations

import pytest

from workers.cache.guards import mismatch
from workers.cache.guards.units import measures, unit_mismatch

OTHER_UNITS = [
    ("How far is 5 km in miles?", "How far is 5 miles in km?"),
    ("Convert 5 km to miles", "Convert 5 miles to km"),
    ("Convert 100 dollars to euros", "Convert 100 euros to dollars"),
    ("I earn 50k USD a year", "I earn €50,000 a year"),
    ("Wait 5 minutes", "Wait 5 hours"),
    ("How long is 100 MB to download?", "How long is 100 GB to download?"),
    ("Is 30 degrees Celsius hot?", "Is 30 degrees Fahrenheit hot?"),
    ("How many ounces in a cup?", "How many cups in an ounce?"),
    ("How long is a marathon in miles?", "How long is a marathon in kilometres?"),
    ("How many hours of sleep do I need?", "How many minutes of sleep do I need?"),
    ("What's 1 GB in MB?", "What's 1 MB in GB?"),
    ("Convert 32 F to C", "Convert 32 C to F"),
    ("How many square metres is a football pitch?", "How many hectares is a football pitch?"),
    ("What is the distance to the Moon in kilometres?", "What is the distance to the Moon in light-seconds?"),
    ("What is a megabyte?", "What is a gigabyte?"),
    ("Run for 30 minutes", "Run for 30 miles"),
    ("How many grams in an ounce?", "How many ounces in a gram?"),
    ("Is 1 TB enough?", "Are 2 TB enough?"),
]

SAME_UNITS = [
    ("5 km", "5 kilometres"),
    ("twenty-five dollars", "$25"),
    ("Convert $100 to euros", "Convert 100 USD to EUR"),
    ("I earn 50k USD a year", "I earn $50,000 a year"),
    ("Is 100 degrees Fahrenheit hot?", "Is 100°F hot?"),
    ("Is 30°C hot?", "Is 30 degrees Celsius hot?"),
    ("How many miles is 5 km?", "5 km is how many miles?"),
    ("How much is a megabyte?", "How much is an MB?"),
    ("whats 20 centimetres in inchs", "what is 20 cm in inches"),
    ("How many hours of sleep do adults need?", "How much sleep does an adult need?"),
    ("how much is the pro plan per month", "what's the monthly price of the Pro plan?"),
    ("What's 72 F in Celsius?", "Convert 72 degrees Fahrenheit to Celsius"),  # units are not names
    ("What's 10 km in miles?", "How many miles are in 10 kilometers?"),
    ("How much is $50 in euros?", "Convert 50 dollars to euros"),
    (
        "How much data does Netflix use per hour?",
        "How many GB does Netflix use in an hour?",
    ),  # a rate's "per"
    ("What's the speed limit in mph?", "What is the speed limit in miles per hour?"),
    ("How many seconds are in a day?", "How many seconds in one day?"),
    ("How much does 1 TB of cloud storage cost?", "What's the price of a terabyte of cloud storage?"),
]


@pytest.mark.parametrize(("a", "b"), OTHER_UNITS)
def test_other_units_are_vetoed_both_ways(a: str, b: str) -> None:
    assert mismatch(a, b) is not None
    assert mismatch(b, a) is not None


@pytest.mark.parametrize(("a", "b"), SAME_UNITS)
def test_one_unit_however_written_passes_both_ways(a: str, b: str) -> None:
    assert mismatch(a, b) is None
    assert mismatch(b, a) is None


def test_the_unit_guard_itself_sees_a_value_in_other_units() -> None:
    assert unit_mismatch("Wait 5 minutes", "Wait 5 hours")
    assert unit_mismatch("a 65 inch tv", "a 65 cm tv")
    assert not unit_mismatch("a 65 inch tv", "a 65 inches tv")


def test_quantities_read_to_value_and_units() -> None:
    assert measures("5 km").quantities == measures("5 kilometres").quantities == {("5", frozenset({"km"}))}
    assert measures("$25").quantities == measures("25 dollars").quantities == {("25", frozenset({"usd"}))}
    assert measures("10 square metres").quantities == {("10", frozenset({"sq:meter"}))}
    assert measures("How many miles is it?").asked == {frozenset({"mile"})}
    assert ("5", frozenset({"pound", "gbp"})) in measures("5 pounds").quantities  # weight or money
