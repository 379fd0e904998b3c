"""Abbreviations read as one name with their spelled-out forms: "NYC" is "New York City".

A text and its paraphrase often differ only by writing a name out ("two-factor
authentication" / "2FA", "the United States" / "the USA"), which the entity guard would
otherwise read as a name missing from the other text. :func:`fold_abbreviations` rewrites
every form listed in ``[abbreviations]`` of lexicon.toml as its abbreviation before the text
is tokenized, so every guard sees the same name in both (in lowercase when the form was
written in lowercase, so that folding makes no name the text did not have). Initialisms not in the list are
matched by the entity guard from the capitals of the words ("Federal Reserve" / "FR").
"""

from __future__ import annotations

import re

from workers.cache.guards.lexicon import ABBREVIATIONS


def _pattern(form: str) -> str:
    """A form as a regex: words apart by spaces, hyphens or nothing, an optional plural "s"."""
    parts = [re.escape(word) for word in re.split(r"[\s-]+", form.strip())]
    body = r"[\s-]*".join(parts)
    plural = "s?" if form.islower() else ""
    return rf"{body}{plural}(?![\w-])"


def _compile(caseless: bool) -> tuple[re.Pattern[str], dict[str, str]]:
    """One alternation of every form of one kind (lowercase or as written), longest first."""
    forms = {
        (form.lower() if caseless else form): abbreviation
        for abbreviation, written in ABBREVIATIONS.items()
        for form in (f.strip() for f in written.split(";"))
        if form and form.islower() == caseless
    }
    ordered = sorted(forms, key=len, reverse=True)
    lookup = {re.sub(r"[\s-]+", "", form): abbreviation for form, abbreviation in forms.items()}
    flags = re.IGNORECASE if caseless else 0
    # one look-behind for all the forms: the alternatives are tried at word starts only
    return re.compile(r"(?<![\w.])(?:" + "|".join(_pattern(form) for form in ordered) + ")", flags), lookup


_CASELESS, _CASELESS_FORMS = _compile(caseless=True)
_WRITTEN, _WRITTEN_FORMS = _compile(caseless=False)


def _replace(match: re.Match[str], lookup: dict[str, str], caseless: bool) -> str:
    text = match.group()
    plural = ""
    key = re.sub(r"[\s-]+", "", text.lower() if caseless else text)
    if key not in lookup and caseless and key.endswith("s"):
        key, plural = key[:-1], "s"
    abbreviation = lookup.get(key, text)
    # written in lowercase, the form stays lowercase: "out-of-office" is no name, and "ooo" no more
    return (abbreviation.lower() if text.islower() else abbreviation) + plural


def fold_abbreviations(text: str) -> str:
    """``text`` with every listed spelled-out form written as its abbreviation."""
    text = _WRITTEN.sub(lambda m: _replace(m, _WRITTEN_FORMS, caseless=False), text)
    return _CASELESS.sub(lambda m: _replace(m, _CASELESS_FORMS, caseless=True), text)
