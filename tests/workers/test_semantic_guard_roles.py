"""The role guard: the same words with two roles swapped are another question; symmetric ones are not."""

from __future__ import annotations

import pytest

from workers.cache.guards import mismatch
from workers.cache.guards.relations import Relation
from workers.cache.guards.roles import lemma, role_mismatch, roles

SWAPPED = [
    ("Did Alice pay Bob?", "Did Bob pay Alice?"),
    ("Apple sued Samsung", "Samsung sued Apple"),
    ("Did the dog bite the man?", "Did the man bite the dog?"),
    ("Why does the cat chase the mouse?", "Why does the mouse chase the cat?"),
    ("Did Google acquire YouTube?", "Did YouTube acquire Google?"),
    ("Does Alice owe Bob money?", "Does Bob owe Alice money?"),
    ("Did Federer beat Nadal at Wimbledon?", "Did Nadal beat Federer at Wimbledon?"),
    ("What happened when Germany invaded Poland?", "What happened when Poland invaded Germany?"),
    ("Can a landlord evict a tenant in winter?", "Can a tenant evict a landlord in winter?"),
    ("Does the employee report to the manager?", "Does the manager report to the employee?"),
    ("My landlord owes me money", "I owe my landlord money"),
    ("Did Alice pay Bob?", "Was Alice paid by Bob?"),  # passive, other agent
    ("Who did Alice pay?", "Who paid Alice?"),
    ("Who is paying Bob?", "Who is Bob paying?"),
    ("Lakers vs Celtics score", "Celtics vs Lakers score"),
    ("dog food for cats", "cat food for dogs"),
    ("email interviewer to candidate rejection", "email candidate to interviewer rejection"),
    ("Find customers who referred other customers.", "Find customers who were referred by other customers."),
    ("Should I call my doctor about this rash?", "Should my doctor call me about this rash?"),
    ("Can you help me write a resume?", "Can I help you write a resume?"),
    (
        "Will the recipient be charged if I send them a text?",
        "Will I be charged if the recipient sends me a text?",
    ),
    ("flights London to New York duration", "flights New York to London duration"),
    ("write a breakup text from him to her", "write a breakup text from her to him"),
    ("Is the teacher's student here?", "Is the student's teacher here?"),
    ("Is Luke the son of Vader?", "Is Vader the son of Luke?"),
    (
        "write a function that checks if list a contains list b",
        "write a function that checks if list b contains list a",
    ),
]

SAME_ROLES = [
    ("Bob was paid by Alice", "Alice paid Bob"),
    ("Did Alice pay Bob?", "Was Bob paid by Alice?"),
    ("Who did Alice pay?", "Who was paid by Alice?"),
    ("Does the Samsung Frame TV support Dolby Vision?", "Is Dolby Vision supported on the Samsung Frame TV?"),
    ("Who is Apple's CEO?", "Who is the CEO of Apple?"),
    ("Who is the father of Luke?", "Who is Luke's father?"),
    ("Is Paris the capital of France?", "Is France's capital Paris?"),
    ("In Excel how do I freeze the top row?", "How do I freeze the top row in Excel?"),
    ("Will I be charged if I cancel today?", "If I cancel today will I be charged?"),
    ("How do I remove a red wine stain from carpet?", "How can I get red wine out of a carpet?"),
    ("UK VAT rate standard", "What is the standard rate of VAT in the United Kingdom?"),  # keywords
    ("python list to string", "convert list to string in python"),
    (
        "Will they refund me if I cancel?",
        "If I cancel, will I get a refund from them?",
    ),  # a noun, not the verb
    ("Can I get paid by them before the work is done?", "Can they pay me before the work is done?"),
    ("Can my employer make me work on holidays?", "Can I be made to work on holidays by my employer?"),
    (
        "Do I need to pay taxes on money my parents gave me?",
        "My parents gave me money; do I pay taxes on it?",
    ),
    ("How do I transfer photos from my iPhone to my PC?", "How can I move pictures from my iPhone to my PC?"),
    ("Does insurance cover a dental cleaning?", "Is a dental cleaning covered by insurance?"),
    ("Who invented the telephone?", "The telephone was invented by whom?"),
    ("How do banks calculate credit scores?", "How are credit scores calculated by banks?"),
]

SYMMETRIC = [
    ("When did Alice marry Bob?", "When did Bob marry Alice?"),
    ("Where did Alice meet Bob?", "Where did Bob meet Alice?"),
    ("Did Federer play Nadal at Wimbledon?", "Did Nadal play Federer at Wimbledon?"),
    ("What is the difference between Python and Java?", "What is the difference between Java and Python?"),
    ("Compare Python with Java", "Compare Java with Python"),
    ("Should I learn Python or Java?", "Should I learn Java or Python?"),
    ("Cats and dogs as pets", "Dogs and cats as pets"),
    ("What is 5 times 3?", "What is 3 times 5?"),
    ("Is Spain a neighbour of France?", "Is France a neighbour of Spain?"),
    ("stocks vs bonds, what's the difference?", "bonds vs stocks, what's the difference?"),
    ("Tabs vs spaces for indentation: compare them.", "Spaces vs tabs for indentation: compare them."),
    (
        "What is the difference between a debit card and a credit card?",
        "Debit card versus credit card: how do they differ?",
    ),
]


@pytest.mark.parametrize(("a", "b"), SWAPPED)
def test_swapped_roles_are_vetoed_both_ways(a: str, b: str) -> None:
    assert mismatch(a, b) is not None
    assert mismatch(b, a) is not None


@pytest.mark.parametrize(("a", "b"), SAME_ROLES + SYMMETRIC)
def test_same_roles_and_symmetric_words_pass_both_ways(a: str, b: str) -> None:
    assert mismatch(a, b) is None
    assert mismatch(b, a) is None


@pytest.mark.parametrize(("a", "b"), SWAPPED[:14])
def test_the_role_guard_itself_names_verb_swaps(a: str, b: str) -> None:
    assert role_mismatch(a, b) and role_mismatch(b, a)
    assert not role_mismatch(a, a)


def test_a_verb_reads_its_doer_on_the_left_in_either_voice() -> None:
    expected = Relation("role:pay", frozenset({lemma("alice")}), frozenset({"bob"}))
    assert expected in roles("Did Alice pay Bob?")
    assert expected in roles("Bob was paid by Alice")


def test_lemmas_join_the_forms_of_a_verb() -> None:
    assert lemma("chased") == lemma("chases") == lemma("chase") == lemma("chasing")
    assert lemma("paid") == lemma("pays") == "pay"
    assert lemma("stopped") == lemma("stop")
    assert lemma("married") == lemma("marries") == "marry"
