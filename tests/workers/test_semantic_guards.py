"""The semantic cache's guards: each kind of mismatch is caught, paraphrases pass, both ways round."""

from __future__ import annotations

import fnmatch
import importlib.resources
import importlib.util
import json
import math
import sys
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import workers.cache.guards
from workers.cache.guards import GUARDS, Guard, mismatch
from workers.cache.guards.dates import dates
from workers.cache.guards.entities import entities
from workers.cache.guards.negation import negations
from workers.cache.guards.numbers import numbers
from workers.cache.guards.questions import question_types
from workers.cache.guards.relations import Relation, relations
from workers.cache.guards.substitution import substitution
from workers.cache.matching import DEFAULT_THRESHOLD, SemanticMatcher

ROOT = Path(__file__).resolve().parents[2]
PAIRS = ROOT / "bench" / "data" / "semantic_pairs.jsonl"

MISMATCHES = [
    ("Is X safe?", "Is X not safe?", "negation"),
    ("Is this mushroom safe to eat?", "Is this mushroom unsafe to eat?", "negation"),
    ("Why does my laptop charge?", "Why doesn't my laptop charge?", "negation"),
    ("Why does my laptop charge?", "Why doesnt my laptop charge?", "negation"),
    ("Can I use the app with an account?", "Can I use the app without an account?", "negation"),
    ("Why does the function return a value?", "Why does the function never return a value?", "negation"),
    ("Is there a fee for cancelling?", "Is there no fee for cancelling?", "negation"),
    ("What are the top 5 movies of all time?", "What are the top 10 movies of all time?", "number"),
    ("List three tips for sleeping better", "List five tips for sleeping better", "number"),
    ("Who was the first president of France?", "Who was the second president of France?", "number"),
    ("What is 15% of 80?", "What is 1.5% of 80?", "number"),
    ("How long does it take to walk 2.5 km?", "How long does it take to walk 25 km?", "number"),
    ("Who won the World Cup in 2018?", "Who won the World Cup in 2022?", "date"),
    ("Is the bank open on Sunday?", "Is the bank open on Saturday?", "date"),
    ("What's the weather forecast for tomorrow?", "What's the weather forecast for today?", "date"),
    ("Schedule a call on March 3", "Schedule a call on March 4", "date"),
    ("What was life like in the 1920s?", "What was life like in the 1960s?", "date"),
    ("Book a table for 7pm", "Book a table for 7am", "date"),
    ("What did the Fed decide last week?", "What did the Fed decide next week?", "date"),
    ("What is the capital of France?", "What is the capital of Spain?", "entity"),
    ("How do I deploy a Flask app to AWS?", "How do I deploy a Flask app to GCP?", "entity"),
    ("Does the iPhone support wireless charging?", "Does the Pixel support wireless charging?", "entity"),
    ("Is A bigger than B?", "Is B bigger than A?", "direction"),
    ("Is a cheetah faster than a lion?", "Is a lion faster than a cheetah?", "direction"),
    ("Is A bigger than B?", "Is A smaller than B?", "direction"),
    (
        "Are houses cheaper in Texas than in California?",
        "Are houses cheaper in California than in Texas?",
        "direction",
    ),
    ("How do I increase my credit limit?", "How do I decrease my credit limit?", "direction"),
    ("What should I eat before a workout?", "What should I eat after a workout?", "direction"),
    ("Convert Celsius to Fahrenheit", "Convert Fahrenheit to Celsius", "direction"),
    ("Flights from London to Paris", "Flights from Paris to London", "direction"),
    ("How do I upload files to Google Drive?", "How do I download files from Google Drive?", "direction"),
    ("Why do bond prices fall when rates rise?", "Why do bond prices rise when rates fall?", "direction"),
    ("How do I turn on dark mode?", "How do I turn off dark mode?", "direction"),
    ("Who wrote Pride and Prejudice?", "When was Pride and Prejudice written?", "question"),
    ("How do I reverse a list in Python?", "How do I sort a list in Python?", "substitution"),
    ("how to install numpy on windows", "how to install numpy on linux", "substitution"),
]

PARAPHRASES = [
    ("How do I reset my password?", "What's the way to reset my password?"),
    ("Summarise this article", "Give me a summary of this article"),
    ("Why isn't my app starting?", "Why won't my app start?"),
    ("What is the capital of France?", "What's France's capital?"),
    ("what's the capital of canada", "What is the capital of Canada?"),
    ("HOW DO I CHANGE MY EMAIL ADDRESS", "How do I change my email address?"),
    ("Give me the top five tips", "Give me the top 5 tips"),
    ("What is 20% of 1,000?", "What's twenty percent of 1000?"),
    ("Who was the 3rd president?", "Who was the third president?"),
    ("Events on March 3rd", "events on the 3rd of March"),
    ("Is the Pacific bigger than the Atlantic?", "Is the Atlantic smaller than the Pacific?"),
    ("Is A bigger than B?", "Is B smaller than A?"),
    ("If I cancel today, will I still be charged?", "Will I still be charged if I cancel today?"),
    ("In Excel, how do I freeze the top row?", "How do I freeze the top row in Excel?"),
    ("How do I export my contacts?", "How can I export my contacts?"),
    ("I can't connect to Wi-Fi", "I cannot connect to WiFi"),
    ("Which one is better?", "Which is better?"),
    ("May I get a refund?", "Can I get a refund?"),
    ("How do I enable two-factor authentication?", "How can I turn on two-factor authentication?"),
    ("Translate this paragraph into French", "Can you translate this paragraph to French?"),
    ("When is the Louvre open?", "What are the opening hours of the Louvre?"),
]


@pytest.mark.parametrize(("a", "b", "reason"), MISMATCHES)
def test_each_guard_catches_its_case_both_ways(a: str, b: str, reason: str) -> None:
    assert mismatch(a, b) == reason
    assert mismatch(b, a) == reason


@pytest.mark.parametrize(("a", "b"), PARAPHRASES)
def test_paraphrases_pass_both_ways(a: str, b: str) -> None:
    assert mismatch(a, b) is None
    assert mismatch(b, a) is None


def test_the_guards_run_in_one_documented_order() -> None:
    assert [guard.reason for guard in GUARDS] == [
        "negation",
        "date",
        "number",
        "entity",
        "direction",
        "unit",
        "role",
        "question",
        "substitution",
    ]


def test_a_pair_several_guards_reject_gets_the_first_guards_reason() -> None:
    assert mismatch("Is X safe in 2019?", "Is X not safe in 2020?") == "negation"
    assert mismatch("Who won in Paris in 2019?", "Who won in Rome in 2020?") == "date"
    assert mismatch("Top 5 hotels in Paris", "Top 10 hotels in Rome") == "number"


def test_mismatch_asks_the_guards_listed_in_guards(monkeypatch: pytest.MonkeyPatch) -> None:
    """Adding a guard is a module and one line in GUARDS: nothing else lists them."""
    monkeypatch.setattr(
        workers.cache.guards, "GUARDS", (Guard("colour", lambda a, b: ("red" in a) != ("red" in b)),)
    )

    assert mismatch("a red car", "a blue car") == "colour"
    assert mismatch("Is X safe?", "Is X not safe?") is None  # the negation guard is no longer listed


def test_the_word_lists_are_package_data() -> None:
    lexicon = importlib.resources.files("workers.cache.guards").joinpath("lexicon.toml")
    assert lexicon.is_file()
    assert "stopwords" in tomllib.loads(lexicon.read_text(encoding="utf-8"))["shared"]
    with (ROOT / "pyproject.toml").open("rb") as file:
        patterns = tomllib.load(file)["tool"]["setuptools"]["package-data"]["workers"]
    assert any(fnmatch.fnmatch("cache/guards/lexicon.toml", pattern) for pattern in patterns)


def labelled_pairs() -> list[dict[str, str]]:
    with PAIRS.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def test_symmetric_on_every_labelled_pair_and_silent_on_identical_texts() -> None:
    pairs = labelled_pairs()
    assert len(pairs) >= 300
    for pair in pairs:
        assert mismatch(pair["a"], pair["b"]) == mismatch(pair["b"], pair["a"]), pair
        for text in (pair["a"], pair["b"]):
            assert mismatch(text, text) is None, text


VOCABULARY = sorted(
    {word for pair in labelled_pairs() for text in (pair["a"], pair["b"]) for word in text.split()}
    | {"not", "than", "from", "to", "before", "after", "?", ",", "Who", "When", "2019", "5pm", "-"}
)
TEXTS = st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=14).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(TEXTS, TEXTS)
def test_any_texts_symmetric_and_never_differ_from_themselves(a: str, b: str) -> None:
    assert mismatch(a, a) is None
    assert mismatch(a, b) == mismatch(b, a)


def test_the_guards_reject_nearly_every_labelled_hard_negative() -> None:
    """Negation, number, date, entity and direction pairs are the guards' job, not the threshold's."""
    missed = [
        pair
        for pair in labelled_pairs()
        if pair["kind"] in {"negation", "number", "date", "entity", "direction"}
        and mismatch(pair["a"], pair["b"]) is None
    ]
    assert len(missed) <= 2, missed


def test_numbers_read_to_one_canonical_value() -> None:
    assert numbers("1,000 users") == numbers("1k users") == numbers("one thousand users") == {"1000"}
    assert numbers("twenty-five") == numbers("25") == {"25"}
    assert numbers("two hundred and fifty") == {"250"}
    assert numbers("the 3rd") == numbers("the third") == {"#3"}
    assert numbers("5%") == numbers("5 percent") == {"5%"}
    assert numbers("3.50 dollars") == {"3.5"}
    assert numbers("-3 degrees") == {"-3"}
    assert numbers("5 million") == {"5000000"}
    assert numbers("in 2019") == frozenset()  # a year: a date, not a number
    assert numbers("which one is better, one of these?") == frozenset()
    assert numbers("one line at a time") == frozenset()
    assert numbers("requests per second") == frozenset()


def test_dates() -> None:
    assert dates("in 2019") == {"year:2019"}
    assert dates("on March 3rd") == dates("the 3rd of March") == {"month:3", "day:3"}
    assert dates("on 2024-03-05 at 17:30") == {"year:2024", "month:3", "day:5", "time:17:30"}
    assert dates("in the 1990s") == {"decade:1990"}
    assert dates("in the 19th century") == {"century:19"}
    assert dates("in Q3") == dates("in the third quarter") == {"quarter:3"}
    assert dates("next week") == {"next:week"}
    assert dates("tomorrow at 5pm") == {"tomorrow", "time:5:00pm"}
    assert dates("May I ask something?") == frozenset()
    assert dates("2000 calories a day") == frozenset()


@pytest.mark.parametrize(
    "text", ["It isn't", "I can't", "never", "no fee", "without a card", "I dont know", "cannot", "unable"]
)
def test_negation_markers(text: str) -> None:
    assert negations(text) == {"not"}


def test_or_not_is_no_negation() -> None:
    assert negations("Should I go or not?") == frozenset()


def test_entities() -> None:
    text = "How do I deploy to AWS from GitHub on my iPhone in Paris?"
    assert entities(text) == {"aws", "github", "iphone", "paris"}
    assert entities("Paris is nice in spring") == frozenset()  # a sentence start says nothing
    assert entities("WHERE IS MY ORDER") == frozenset()


def test_comparisons_are_read_in_one_canonical_order() -> None:
    expected = [Relation("magnitude", frozenset({"pacific"}), frozenset({"atlantic"}))]
    assert relations("Is the Pacific bigger than the Atlantic?") == expected
    assert relations("Is the Atlantic smaller than the Pacific?") == expected


def test_question_types_and_substitution() -> None:
    assert question_types("Who wrote it?") == {"person"}
    assert question_types("For a beginner, how long does it take?") == {"duration"}
    assert question_types("What is it?") == frozenset()
    assert substitution("How do I reverse a list?", "How do I sort a list?") == ("reverse", "sort")
    assert substitution("How do I track my package?", "How can I track my package?") is None
    assert substitution("What colour is it?", "What color is it?") is None


def test_matcher_needs_similarity_and_no_guard_mismatch() -> None:
    matcher = SemanticMatcher(0.85)
    assert matcher.accept("How do I reset my password?", "What's the way to reset my password?", 0.9) == (
        True,
        None,
    )
    assert matcher.accept("How do I reset my password?", "How do I reset my password?", 0.84) == (
        False,
        "below_threshold",
    )
    assert matcher.accept("Is X safe?", "Is X not safe?", 0.99) == (False, "negation")
    assert SemanticMatcher().threshold == DEFAULT_THRESHOLD
    with pytest.raises(ValueError):
        SemanticMatcher(0.0)


class AngleEmbedder:
    """Unit vectors in the plane, at angles chosen per text: the cosines are known exactly."""

    def __init__(self, angles: dict[str, float]) -> None:
        self.angles = angles

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.array([[math.cos(self.angles[t]), math.sin(self.angles[t])] for t in texts], np.float32)


def test_evaluate_counts_hits_misses_and_false_hits_by_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "bench"))  # as `python bench/semantic_quality.py` has it
    spec = importlib.util.spec_from_file_location("semantic_quality", ROOT / "bench" / "semantic_quality.py")
    assert spec is not None and spec.loader is not None
    quality: Any = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = quality  # its dataclasses look their module up
    spec.loader.exec_module(quality)
    pairs = [
        {"a": "How do I reset my password?", "b": "What's the way to reset my password?", "label": "hit"},
        {"a": "Summarise this article", "b": "Give me a summary of this article", "label": "hit"},
        {"a": "Is X safe?", "b": "Is X not safe?", "label": "miss", "kind": "negation"},
        {"a": "How do I center a div?", "b": "How do I center text?", "label": "miss", "kind": "topic"},
    ]
    for pair in pairs:
        pair.setdefault("kind", "paraphrase")
    angles = {pair["a"]: 0.0 for pair in pairs}
    cosines = [0.95, 0.5, 0.99, 0.9]  # the second paraphrase is too far apart at 0.8
    angles |= {pair["b"]: math.acos(c) for pair, c in zip(pairs, cosines, strict=True)}
    embedder = AngleEmbedder(angles)

    guarded = quality.evaluate(pairs, embedder, 0.8, guarded=True)
    assert (guarded["tp"], guarded["fp"], guarded["fn"], guarded["tn"]) == (1, 1, 1, 1)
    assert guarded["precision"] == 0.5 and guarded["recall"] == 0.5
    assert guarded["false_hits_by_kind"] == {"topic": 1}
    assert guarded["rejections_by_reason"] == {"negation": 1}

    plain = quality.evaluate(pairs, embedder, 0.8, guarded=False)
    assert plain["false_hits_by_kind"] == {"negation": 1, "topic": 1}
    assert quality.choose([guarded, plain], 0.5)["guarded"] is True
